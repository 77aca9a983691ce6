"""Window and chunking loops have a step of at least 1 and a bound on every input (issue 25, point 4)."""

import pytest

from funnel_tfm.data.squad_data import doc_windows


@pytest.mark.parametrize("stride, room", [(0, 8), (-3, 8), (4, 0), (4, -2)])
def test_doc_windows_refuses_a_step_that_cannot_advance(stride, room):
    with pytest.raises(ValueError, match="must be at least 1"):
        doc_windows(1000, room, stride)


@pytest.mark.parametrize("num_tokens, room, stride", [(0, 5, 1), (1, 5, 1), (1000, 7, 1), (1000, 7, 100), (9, 9, 3)])
def test_doc_windows_cover_the_paragraph_in_at_most_one_window_per_token(num_tokens, room, stride):
    windows = doc_windows(num_tokens, room, stride)
    assert 1 <= len(windows) <= max(1, num_tokens)
    assert windows[0][0] == 0 and windows[-1][0] + windows[-1][1] >= num_tokens
    assert all(b[0] - a[0] >= 1 for a, b in zip(windows, windows[1:]))
