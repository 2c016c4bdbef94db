"""Messages in the caller's language: gettext catalogues read through Babel.

Every user-facing title and detail of a problem document is written in English in the code,
marked for extraction, and translated when the response is built, in the language negotiated
from the request's `Accept-Language` (`RUJUKAN_DEFAULT_LANGUAGE` when it names none we speak):

- `msg("Referral {reference} is still open.", reference=ref)`: a message with values. The
  template is the gettext msgid; the values are filled in with `str.format` after translation,
  so a translation may move the `{placeholders}`. A value may itself be a `Message` (rendered
  in the same language). `str(m)` is the English text.
- `N_("Not found")`: marks a constant (a class-level title) for extraction; it is translated
  at response time by looking the text up as a msgid.
- `join("; ", parts)`: several messages shown as one.

The Indonesian catalogue is `service/locale/id/LC_MESSAGES/messages.po`: `make messages`
extracts the marked messages into `service/locale/messages.pot` and merges them into it; the
service compiles it in memory when first used (no build step; tests/test_i18n.py compiles it the
same way and fails on any message without a translation). Field errors of the framework and of
our validators are rebuilt in service.validation_messages. Codes never change with the
language: problem `type`s, error `type`s, OAuth `error` codes, taxonomy codes, field names.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping
from contextvars import ContextVar
from functools import lru_cache
from pathlib import Path
from typing import Final, Literal, TypeAlias

from babel.core import negotiate_locale
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations
from werkzeug.datastructures import LanguageAccept
from werkzeug.http import parse_accept_header

Language: TypeAlias = Literal["en", "id"]
# The language the code's messages are written in; the others have a catalogue.
SOURCE_LANGUAGE: Final = "en"
LANGUAGES: Final[tuple[str, ...]] = ("en", "id")
DOMAIN: Final = "messages"
LOCALE_DIR: Final = Path(__file__).parent / "locale"

# The language of the request being answered; set by the request middleware.
response_language: ContextVar[str] = ContextVar("response_language", default=SOURCE_LANGUAGE)


class Message:
    """A message translated when it is shown: `render(language)`; `str()` gives English."""

    __slots__ = ("params", "template")

    def __init__(self, template: str, params: Mapping[str, object] | None = None) -> None:
        self.template = template
        self.params = dict(params or {})

    def render(self, language: str) -> str:
        """The message in `language` (English when it has no translation there)."""
        text = translate(self.template, language)
        if not self.params:
            return text
        values = {
            name: value.render(language) if isinstance(value, Message) else value
            for name, value in self.params.items()
        }
        return text.format(**values)

    def __str__(self) -> str:
        return self.render(SOURCE_LANGUAGE)

    def __repr__(self) -> str:
        return f"msg({self.template!r}, **{self.params!r})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Message):
            return str(self) == str(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(str(self))


class _Joined(Message):
    __slots__ = ("parts", "separator")

    def __init__(self, separator: str, parts: Iterable[str | Message]) -> None:
        super().__init__(separator)
        self.separator = separator
        self.parts = list(parts)

    def render(self, language: str) -> str:
        return self.separator.join(localize(part, language) for part in self.parts)

    def __repr__(self) -> str:
        return f"join({self.separator!r}, {self.parts!r})"


def msg(template: str, /, **params: object) -> Message:
    """A message with values, translated when the response is built (see the module doc)."""
    return Message(template, params)


def N_(text: str) -> str:  # noqa: N802 (gettext's own name for a marker)
    """Mark a constant for extraction; it is translated by msgid lookup when shown."""
    return text


def join(separator: str, parts: Iterable[str | Message]) -> Message:
    """Several messages shown as one, each translated, joined by `separator`."""
    return _Joined(separator, parts)


def localize(text: str | Message, language: str) -> str:
    """`text` in `language`: a Message is rendered, a plain text is looked up as a msgid."""
    if isinstance(text, Message):
        return text.render(language)
    return translate(text, language)


def translate(msgid: str, language: str) -> str:
    """The translation of `msgid` in `language`, or `msgid` itself when there is none."""
    if language == SOURCE_LANGUAGE or language not in LANGUAGES or not msgid:
        return msgid
    return catalogue(language).gettext(msgid)


@lru_cache(maxsize=len(LANGUAGES))
def catalogue(language: str) -> Translations:
    """The catalogue of `language`, its .po compiled in memory with Babel (once per process)."""
    return Translations(io.BytesIO(compile_po(po_path(language))), domain=DOMAIN)


def po_path(language: str) -> Path:
    """Where the translations of `language` are kept."""
    return LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"


def compile_po(path: Path) -> bytes:
    """The .mo image of a .po file; fuzzy entries are left out, as gettext does."""
    with path.open("rb") as po:
        parsed = read_po(po, domain=DOMAIN)
    out = io.BytesIO()
    write_mo(out, parsed, use_fuzzy=False)
    return out.getvalue()


# Clients send few distinct headers; the answer depends on nothing else.
@lru_cache(maxsize=256)
def negotiate(accept_language: str | None, default: str) -> str:
    """The language to answer in, from an `Accept-Language` value (q-values honoured).

    The header is parsed by Werkzeug (ordered by quality; `q=0` means "not this one") and
    matched by Babel's locale negotiation (`id-ID` is `id`, `en-US` is `en`). `*`, or no
    language we speak, gives `default`.
    """
    if not accept_language:
        return default
    accepted = parse_accept_header(accept_language, LanguageAccept)
    preferred: list[str] = []
    # Werkzeug lists `*` after every named language; its quality says where it belongs.
    for tag, quality in sorted(accepted, key=lambda item: -item[1]):
        if quality <= 0:
            continue
        if tag == "*":
            break
        preferred.append(tag)
    found = negotiate_locale(preferred, LANGUAGES, sep="-") if preferred else None
    return found.lower() if found else default
