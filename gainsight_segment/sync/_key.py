"""audience_key: the Gainsight trait name of an audience or computed trait."""

from __future__ import annotations

import re
import unicodedata

import gainsight_segment as gs

__all__ = ["audience_key"]

# Latin letters that NFKD does not decompose into a base letter and an accent (lower case:
# they are folded after lower-casing, so that "Æ" is one word break, not "A" + "E").
_FOLD = str.maketrans(
    {
        "ß": "ss",
        "æ": "ae",
        "œ": "oe",
        "ø": "o",
        "đ": "d",
        "ð": "d",
        "ł": "l",
        "þ": "th",
        "\u0131": "i",  # dotless i
    }
)
_NON_WORD = re.compile(r"[^a-z0-9]+")


def _break_camel_case(text: str) -> str:
    # The track whitelist's word breaks (see _whitelist.py), for letters of any script: a
    # capital after a lower-case letter or a digit ("orderCompleted"), and the last capital
    # of an acronym before lower case ("VIPCustomers" -> "VIP_Customers"). Digits join the
    # word they touch.
    out = []
    for index, char in enumerate(text):
        if index and char.isupper():
            before = text[index - 1]
            after = text[index + 1 : index + 2]
            if before.islower() or before.isdigit() or (before.isupper() and after.islower()):
                out.append("_")
        out.append(char)
    return "".join(out)


def audience_key(name: str) -> str:
    """Return the Gainsight trait name of an audience or computed trait: its snake_case key.

    The rules, in order:

    1. Accents are stripped (Unicode NFKD, combining marks dropped), and the Latin letters
       that have no decomposition are spelled out (``ß`` -> ``ss``, ``æ`` -> ``ae``,
       ``ø`` -> ``o``, ``ł`` -> ``l``, ...).
    2. camelCase boundaries become word breaks (``orderCompleted`` -> ``order Completed``,
       ``VIPCustomers`` -> ``VIP Customers``). Digits stay with the word they touch:
       ``last30Days`` -> ``last30 Days``.
    3. Everything is lower-cased, and every run of other characters (spaces, punctuation,
       symbols such as ``>=`` or ``%``, letters of non-Latin scripts) becomes one ``_``;
       leading and trailing ``_`` are dropped. Symbols carry no meaning in the key, so
       ``"NPS >= 9"`` and ``"NPS <= 9"`` collide: name such audiences in words.
    4. A leading digit is kept, as Segment kept it (``"30 Day Actives"`` -> ``30_day_actives``).

    A name that is already a key (lower-case ASCII letters and digits in words joined by
    single ``_``) is returned unchanged, so ``audience_key`` is idempotent.

    Examples:
        >>> audience_key("Order Completed Last 30 Days")
        'order_completed_last_30_days'
        >>> audience_key("VIP customers")
        'vip_customers'
        >>> audience_key("NPS >= 9")
        'nps_9'
        >>> audience_key("orderCompletedLast30Days")
        'order_completed_last30_days'
        >>> audience_key("Clientes élite")
        'clientes_elite'
        >>> audience_key("30 Day Actives")
        '30_day_actives'
        >>> audience_key("order_completed_last_30days")
        'order_completed_last_30days'

    Args:
        name: The audience's or trait's name, as people write it, or its key.

    Returns:
        The key.

    Raises:
        ConfigurationError: When ``name`` is not a string or leaves nothing once
            normalized (``""``, ``"!!!"``, ``"顧客"``).
    """
    if not isinstance(name, str):
        raise gs.ConfigurationError(f"audience: must be a string, got {type(name).__name__}")
    text = unicodedata.normalize("NFKD", name)
    text = "".join(char for char in text if not unicodedata.combining(char))
    text = _break_camel_case(text).lower().translate(_FOLD)
    key = _NON_WORD.sub("_", text).strip("_")
    if not key:
        raise gs.ConfigurationError(
            f"audience: {name!r} has no ASCII letters or digits to make a key from"
        )
    return key
