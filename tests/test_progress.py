import logging

from include.consent_sync.masking import mask_email
from include.consent_sync.progress import Progress


def test_progress_lines_come_at_a_steady_cadence_with_rate_and_eta(caplog):
    now = [0.0]
    log = logging.getLogger("progress-test")
    progress = Progress("push batch 0", 100, log, every_s=10, done=20, clock=lambda: now[0])
    with caplog.at_level(logging.INFO, logger="progress-test"):
        for _ in range(40):
            now[0] += 0.5
            progress.advance("SYNCED")
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2  # at 10 s and 20 s
    assert lines[-1] == "push batch 0: 60/100 rows (60%), 2.0 rows/s, ETA 20s [SYNCED 40]"


def test_emails_are_masked():
    assert mask_email("jane.doe@example.com") == "j***@example.com"
    assert mask_email(" a+b@x.io") == "a***@x.io"
    assert mask_email("nope") == "***"
    assert mask_email(None) == "***"
