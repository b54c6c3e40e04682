"""Spam, virus, DNSBL and SPF filtering in the twin: behaviours 5, 6 and 7 of the issue."""

from __future__ import annotations

import re

import pytest

from mailstrata.twin.twin import EICAR, SPF_FAIL_DOMAIN
from tests.twin.helpers import Platform, message

pytestmark = pytest.mark.twin

# Scores about 10 with SpamAssassin 4.0's stock rules in the twin: above tag2 (9), below kill (12).
SPAMMY_HTML = """<html><body><font size=7 color=red>CLICK HERE NOW. FREE MONEY. 100% GUARANTEED.</font>
<p>Dear friend, you have been selected. Limited time offer! Viagra cialis cheap meds.
You have won one million dollars in our lottery. Money back guarantee.
<a href="http://192.0.2.1/click">click here</a> to remove yourself from this list.</p></body></html>
"""
GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"


def _amavis_line(platform: Platform, msgid: str) -> str:
    m = platform.wait_log("smtp_in", "amavis.log", rf"[^\n]*Message-ID: {re.escape(msgid)}[^\n]*")
    return m.group(0)


def test_tagged_spam_lands_in_junk_through_the_global_sieve(platform: Platform) -> None:
    msg = message("usuario02@domain01.dom", "Make money fast: you are a winner", sender="winner@example.net")
    msg.set_content(SPAMMY_HTML, subtype="html")
    platform.send(msg)
    platform.wait_delivered("usuario02", msg["Message-ID"], "Junk")
    raw = (platform.fetch("usuario02", msg["Message-ID"], "Junk") or b"").decode(errors="replace")
    score = float(re.search(r"X-Spam-Score: ([\d.-]+)", raw).group(1))  # type: ignore[union-attr]
    assert ("X-Spam-Flag: YES" in raw, 9.0 <= score < 12.0, msg["Message-ID"] in platform.ids("usuario02")) == (
        True, True, False)


def test_gtube_above_the_kill_level_is_discarded(platform: Platform) -> None:
    # GTUBE scores 1000: far above the kill level (12), so amavis discards it (final_spam_destiny D_DISCARD)
    msg = message("usuario02@domain01.dom", "twin: gtube", body=f"{GTUBE}\n")
    assert platform.send(msg) == {}
    line = _amavis_line(platform, msg["Message-ID"])
    assert ("Blocked SPAM" in line, "Discarded" in line) == (True, True)
    assert all(platform.absent_after("usuario02", msg["Message-ID"], 3, box) for box in ("INBOX", "Junk"))


def test_eicar_sent_inbound_never_reaches_a_mailbox(platform: Platform) -> None:
    msg = message("usuario03@domain01.dom", "twin: eicar inbound")
    msg.add_attachment(EICAR.encode(), maintype="application", subtype="octet-stream", filename="eicar.com")
    assert platform.send(msg) == {}
    line = _amavis_line(platform, msg["Message-ID"])
    assert ("Blocked INFECTED" in line, platform.absent_after("usuario03", msg["Message-ID"], 3)) == (True, True)


def test_eicar_sent_outbound_through_smtp_out_is_rejected(platform: Platform) -> None:
    import smtplib

    msg = message("bob@external.example", "twin: eicar outbound", sender="usuario01@domain01.dom")
    msg.add_attachment(EICAR.encode(), maintype="application", subtype="octet-stream", filename="eicar.com")
    with pytest.raises(smtplib.SMTPDataError) as err:
        platform.send(msg, role="smtp_out", port=587, source=platform.corporate,
                      login=("usuario01", platform.password("usuario01")))
    assert (err.value.smtp_code, b"virus" in err.value.smtp_error) == (550, True)


def test_dnsbl_listed_client_is_rejected(platform: Platform) -> None:
    code, text = platform.rcpt_reply("usuario01@domain01.dom", source=platform.info.listed_client)
    assert (code // 100, "blocked using zen.spamhaus.org" in text) == (5, True)


def test_spf_failing_sender_is_rejected(platform: Platform) -> None:
    code, text = platform.rcpt_reply("usuario01@domain01.dom", sender=f"bob@{SPF_FAIL_DOMAIN}")
    assert (code // 100, "SPF fail" in text) == (5, True)


def test_spf_passing_sender_is_accepted(platform: Platform) -> None:
    assert platform.rcpt_reply("usuario01@domain01.dom", sender="bob@example.net")[0] == 250
