"""One truth, as plain functions (fast tier): a code across models, test digits by their MNIST index,
the live code downloads read, and links to digits a subset atlas does not hold.

The app's wiring of these is tested through AppTest (test_app.py, test_app_keep.py) and in a real
browser (test_browser_truth.py)."""

from __future__ import annotations

import numpy as np
import pytest

from explorer import links, state

SUBSET = np.array([0, 1, 2, 3, 10, 15, 4970], dtype=np.int32)  # a subset atlas's test_index [N]


def test_digit_rows_and_numbers_of_a_full_and_a_subset_atlas():
    assert state.digit_row(None, 10, 7) == 7 and state.digit_row(None, 10, 10) is None
    assert state.digit_row(None, 10, -1) is None
    assert state.digit_row(SUBSET, len(SUBSET), 4970) == 6
    assert state.digit_row(SUBSET, len(SUBSET), 4) is None and state.digit_row(SUBSET, len(SUBSET), 9999) is None
    assert state.digit_number(None, 5) == 5 and state.digit_number(SUBSET, 4) == 10
    assert all(state.digit_row(SUBSET, len(SUBSET), state.digit_number(SUBSET, r)) == r for r in range(len(SUBSET)))


def test_articles():
    assert [state.a_digit(d) for d in (7, 8, 0)] == ["a 7", "an 8", "a 0"]


def test_selecting_a_digit_of_a_subset_atlas_uses_its_row():
    mu = np.arange(len(SUBSET) * 2, dtype=np.float32).reshape(-1, 2) / 10
    s: dict = {}
    assert state.select_digit(s, 4970, mu, SUBSET) is True
    assert s[state.SELECTED_KEY] == 4970 and s[state.CODE_KEY].z == state.snap(mu[6])
    assert s[state.CODE_KEY].digit == 4970 and s[state.CODE_KEY].source == "test digit #4970"
    assert state.select_digit(s, 4, mu, SUBSET) is False and s[state.SELECTED_KEY] == 4970  # not held: no change
    # the map's customdata is the MNIST index
    s2: dict = {state.MAP_KEY: {"selection": {"points": [{"customdata": [15]}]}}}
    assert state.on_map_select(s2, mu, test_index=SUBSET) == 15 and s2[state.CODE_KEY].z == state.snap(mu[5])


def test_a_new_code_is_stamped_with_the_model_it_is_shown_on():
    s: dict = {}
    state.set_code(s, [1.0, 2.0], "a prior draw")
    cs = state.on_model(s, "default", 2)
    assert cs.model == "default" and cs.label() == "a prior draw" and cs.rev == 1
    assert state.on_model(s, "default", 2) is cs  # nothing to do on the same model


def test_a_test_digits_code_is_encoded_again_by_the_new_model():
    s: dict = {}
    state.select_digit(s, 3, np.zeros((5, 2), np.float32))
    state.on_model(s, "default", 2)
    new_mu = {3: np.array([0.5, -0.5], np.float32)}
    cs = state.on_model(s, "beta/beta-8", 2, digit_code=new_mu.get)
    assert cs.z == (0.5, -0.5) and cs.label() == "test digit #3" and cs.digit == 3 and cs.model == "beta/beta-8"
    # a digit the new model's atlas lacks: the numbers stay, and the label says whose they are
    cs = state.on_model(s, "seed", 2, digit_code=lambda n: None)
    assert cs.z == (0.5, -0.5) and cs.label() == "test digit #3, carried over unchanged from beta/beta-8"


def test_an_uploads_code_follows_the_upload_and_other_codes_are_carried_over():
    s: dict = {}
    state.set_code(s, [1.0, 1.0], "your upload")
    state.on_model(s, "default", 2)
    cs = state.on_model(s, "seed", 2, sources={"your upload": np.array([-1.0, 2.0])})
    assert cs.z == (-1.0, 2.0) and cs.label() == "your upload" and cs.carried_from is None
    rev = cs.rev
    state.take_release(s, {"z": [0.25, 0.5]}, 2)
    state.on_model(s, "seed", 2)
    cs = state.on_model(s, "default", 2, sources={"your upload": np.array([9.0, 9.0])})
    assert cs.z == (0.25, 0.5) and cs.label() == "sliders, carried over unchanged from seed" and cs.rev > rev
    cs = state.on_model(s, "beta/beta-2", 2)
    assert cs.label() == "sliders, carried over unchanged from seed"  # still seed's numbers
    cs = state.on_model(s, "seed", 2)
    assert cs.label() == "sliders" and cs.z == (0.25, 0.5)  # back on its own model


def test_a_code_of_another_size_is_not_carried_over():
    s: dict = {}
    state.set_code(s, [1.0, 1.0, 1.0], "sliders")
    state.on_model(s, "big", 3)
    cs = state.on_model(s, "small", 2)
    assert cs.z == (0.0, 0.0) and "big's code has 3 numbers, small needs 2" in cs.label()


def test_the_live_box_always_holds_the_current_code():
    s: dict = {}
    box = state.live(s)
    assert box.cs is None and state.live(s) is box
    state.set_code(s, [1.0, 0.0], "a")
    assert box.cs is s[state.CODE_KEY]
    state.take_release(s, {"z": [0.0, 4.0]}, 2)
    assert box.cs.z == (0.0, 4.0) and box.cs.source == "sliders"
    state.on_model(s, "default", 2)
    assert box.cs is s[state.CODE_KEY] and box.cs.model == "default"


def test_a_link_to_a_digit_the_subset_atlas_lacks_gets_a_notice():
    held = lambda n: state.digit_row(SUBSET, len(SUBSET), n) is not None  # noqa: E731
    view = links.read_view({"digit": "4970"}, 2, len(SUBSET), held=held)
    assert view.digit == 4970 and not view.notices  # an MNIST index beyond the atlas's row count
    view = links.read_view({"digit": "4"}, 2, len(SUBSET), held=held)
    assert view.digit is None and view.notices == (
        "The link's test digit #4 is not among the 7 test digits this model's atlas holds; none selected.",)
    view = links.read_view({"digit": "-3"}, 2, len(SUBSET), held=held)
    assert view.digit is None and "not a test-set index" in view.notices[0]


@pytest.mark.parametrize("number", [0, 1, 4970])
def test_links_name_the_mnist_index(number):
    params = links.encode("beta/beta-8", [0.0, 0.0], "PCA", number)
    assert params["digit"] == str(number)
