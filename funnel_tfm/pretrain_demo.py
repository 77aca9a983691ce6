"""The former name of the main job: `python -m funnel_tfm.pretrain_demo` runs `funnel_tfm.demo` (same flags)."""

from absl import app

from funnel_tfm.demo import main

if __name__ == "__main__":
    app.run(main)
