"""Free text that cannot identify anyone: the one check every note and reason goes through.

labq stores references, priorities and effort estimates, never victim or suspect identities. A
note is for the lab's own bookkeeping ("hash match 3 files", "screen cracked, passcode unknown",
"linked via CR-2026-0403"), so text that looks like it names or describes a person is refused
with the reason: an e-mail address, a phone number, a date of birth, a personal name ("name:",
an honorific followed by a capitalised word, "victim: Anna"), or a person's age ("aged 9",
"age 9", "9-year-old"). The patterns are deliberately narrow (a case reference, a device model,
a date or a count of files passes); they catch the slips a tired examiner makes, not someone set
on getting round them.
"""

from __future__ import annotations

import re

MAX_NOTE_LENGTH = 200

NOTE_DESCRIPTION = (
    f"Short (max {MAX_NOTE_LENGTH}) and non-identifying: refused if it looks like an e-mail "
    "address, a phone number, a date of birth ('DOB', 'born on'), a personal name ('name:', "
    "an honorific such as 'Mr' followed by a capitalised word, 'victim: Anna') or a person's age "
    "('aged 9', 'age 9', '9-year-old'). Case references, device descriptions and counts pass."
)

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")
# International (+44 20 7946 0958), trunk-prefixed national (020 7946 0958, 07700900123) and
# North American ((555) 123-4567) numbers; a run of digits inside a reference (CR-2026-0403,
# an IMEI) is not preceded by '+', '(' or a lone '0'.
_PHONE = re.compile(
    r"(?<![\w/-])(?:"
    r"\+\d[\d ().-]{6,}\d"
    r"|\(?0\d{1,4}\)?[ .-]?\d{3,4}[ .-]?\d{3,4}"
    r"|\(\d{3}\)[ .-]?\d{3}[ .-]\d{4}"
    r"|\d{3}[ .]\d{3}[ .]\d{4}"
    r")(?![\w-])"
)
_BIRTH = re.compile(
    r"\b(?:d\.?o\.?b\b\.?|date\s+of\s+birth|birth\s*date|birthday|born\s+(?:on|in)?\s*\d|"
    r"born\s+on\b|n[ée]e?\s+le)",
    re.IGNORECASE,
)
_HONORIFIC = re.compile(r"\b(?:Mr|Mrs|Ms|Miss|Mx|Dr|Sir)\.?\s+[A-Z][a-z]+")
_NAME_LABEL = re.compile(
    r"\b(?:(?:first|last|full|given|family|maiden|real|sur)\s*)?names?\s*[:=]", re.IGNORECASE
)
_NOT_A_PERSON = ("file", "host", "device", "volume", "computer", "model", "account", "user")
_PERSON_LABEL = re.compile(
    r"\b(?:victim|suspect|offender|child|complainant|witness|mother|father|parent|named|called)"
    r"\s*(?:[:=-]|\bis\b)?\s+[A-Z][a-z]+",
    re.IGNORECASE,
)
_UNITS = (  # "age 3 days" is how old a message is, not a person
    r"(?!\s*(?:%|gb|mb|tb|kb|files?|items?|images?|videos?|min|minutes?|hours?|h|d|days?|"
    r"weeks?|months?)\b)"
)
_AGE = re.compile(
    r"\b(?:aged?\s*[:=]?\s*\d{1,2}\b" + _UNITS + r"|\d{1,2}\s*-?\s*(?:years?|yrs?)[\s-]*old\b"
    r"|\d{1,2}\s*(?:yo|y/o|y\.o\.)(?!\w))",
    re.IGNORECASE,
)


def identifying_reason(text: str) -> str | None:
    """Why ``text`` looks like it identifies a person, or None if it does not."""
    if _EMAIL.search(text):
        return "an e-mail address"
    if _BIRTH.search(text):
        return "a date of birth"
    if _AGE.search(text):
        return "a person's age"
    if _PHONE.search(text):
        return "a phone number"
    if _HONORIFIC.search(text):
        return "a personal name (an honorific and a name)"
    for match in _NAME_LABEL.finditer(text):
        before = text[: match.start()].split()
        if not (before and before[-1].lower().rstrip(":") in _NOT_A_PERSON):
            return "a personal name ('name:')"
    for match in _PERSON_LABEL.finditer(text):
        if match.group(0).split()[-1][0].isupper():
            return "a personal name (a person described by name)"
    return None


def non_identifying(text: str) -> str:
    """The validator of every note: refuses text that looks like it identifies someone."""
    reason = identifying_reason(text)
    if reason is not None:
        raise ValueError(
            f"looks like it holds {reason}; notes must not identify anyone "
            "(use case references, not names, contact details, birth dates or ages)"
        )
    return text
