"""The DAG params' values as the tasks use them."""

import pytest

from include.consent_sync.resubscribe_guard import param_choice


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("connection default", None),
        ("on", True),
        ("off", False),
        (None, None),
        (True, True),
        (False, False),
    ],
)
def test_resubscribe_guard_param_choices_and_the_earlier_values(value, expected):
    assert param_choice(value) is expected


def test_resubscribe_guard_param_rejects_anything_else():
    with pytest.raises(
        ValueError, match="resubscribe_guard='maybe': choose one of connection default, on, off"
    ):
        param_choice("maybe")
