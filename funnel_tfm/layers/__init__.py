"""The model's layers, in `keras.ops` only (every Keras backend, no TensorFlow import).

`core` (LayerNorm, EinsumDense, FFN, initializers), `embedding` (the `input` layer), `attention` (relative
attention in both positional forms), `attention_structure` (positions and masks, built once per forward),
`pooling` (pooling and upsampling), `heads` (task heads) and `head_factories` (heads from a ModelConfig);
for FNet, `fourier` (Fourier token mixing by FFT or DFT matrices) and `fnet_blocks` (its embedding, blocks and
the hybrid's attention); `fourier_layer` (a Funnel layer that mixes by Fourier transform: the hybrid).
"""
