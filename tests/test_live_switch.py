"""The live switch: a deployment sends nothing until Variable consent_sync_live is true, except
to the contacts a run names while it is disarmed."""

import pytest

from include.consent_sync.live_switch import DISARMED, UnclearSwitch, decide, is_live


@pytest.mark.parametrize("value", [None, "", "  ", "false", "False", "0", "no", "off"])
def test_absent_or_false_is_disarmed(value):
    assert is_live(value) is False


@pytest.mark.parametrize("value", ["true", "TRUE", " true\n", "1", "yes", "on"])
def test_true_is_live(value):
    assert is_live(value) is True


def test_an_unclear_value_is_an_error_naming_the_variable_and_the_value():
    with pytest.raises(UnclearSwitch, match=r"consent_sync_live='ture'.*\"true\""):
        is_live("ture")


def test_disarmed_run_for_everyone_sends_nothing_and_says_how_to_go_live():
    decision = decide(None, dry_run=False, emails=())
    assert (decision.send, decision.mode, decision.disarmed) == (False, "DISARMED", True)
    assert decision.message == DISARMED
    assert DISARMED.startswith("DISARMED: nothing was sent; set Variable consent_sync_live=true")


def test_disarmed_run_naming_contacts_sends_to_them_only_when_not_a_dry_run():
    one = decide("false", dry_run=False, emails=("jane@example.com",))
    assert (one.send, one.mode, one.disarmed) == (True, "CONTACTS ONLY", False)
    assert "1 contact(s)" in one.message
    assert decide("false", dry_run=True, emails=("jane@example.com",)).send is False


def test_live_sends_unless_dry_run():
    assert decide("true", dry_run=False, emails=()).mode == "LIVE"
    assert decide("true", dry_run=False, emails=()).send is True
    dry = decide("true", dry_run=True, emails=())
    assert (dry.send, dry.mode, dry.disarmed) == (False, "DRY RUN", False)
