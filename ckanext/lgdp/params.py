"""What the actions' input schemas share. Each domain's ``schema.py`` builds
its schemas from these with ``@validator_args`` (ckan.logic.schema), and its
actions are decorated with `validate`.

- Validators of parameters, registered by name (``lgdp_text``,
  ``lgdp_name``, ``lgdp_boolean``, ``lgdp_whole_number``, ``lgdp_iso_date``,
  ``lgdp_choice``, ``lgdp_name_list``, ``lgdp_upload_file``,
  ``lgdp_unknown_parameter``). Each refuses a wrong value with a message in
  plain words: a list or an object where text is wanted, text with a NUL
  character or longer than the platform takes, ``banana`` for true or false.
- `validate`: CKAN's decorator (ckan.logic.validate) with two additions. A
  parameter the action does not take is refused, naming it (a schema that
  keeps ``__extras`` itself decides otherwise); ``_``, the cache buster a
  browser adds to a GET, is ignored. The schema is left on the action as
  ``lgdp_schema``, so a test can find an action without one.
"""
from __future__ import annotations

import datetime
import difflib
import functools
import re
from typing import Any, Callable

from ckan import logic
import ckan.plugins.toolkit as tk
from ckan.types import Action, Context, FlattenDataDict, FlattenErrorDict, FlattenKey, Schema

__all__ = [
    "lgdp_text",
    "lgdp_name",
    "lgdp_boolean",
    "lgdp_whole_number",
    "lgdp_iso_date",
    "lgdp_choice",
    "lgdp_name_list",
    "lgdp_upload_file",
    "lgdp_unknown_parameter",
]

# An id, a name, a GSS code, a period label: CKAN's names are at most 100
# characters, ids 36.
MAX_NAME = 200
# A reason, an explanation, a description, a URL.
MAX_TEXT = 10_000
MAX_LIST = 100
MAX_FILENAME = 255

_TRUE = frozenset({"true", "yes", "y", "t", "1", "on"})
_FALSE = frozenset({"false", "no", "n", "f", "0", "off"})
_WHOLE = re.compile(r"[+-]?\d{1,18}")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def stopping(check: Callable[[Any], Any]) -> Callable[..., None]:
    """A check of one value as a navl validator that stops at a wrong value:
    its message is recorded and the field's later validators do not run
    (navl would run them on the value just refused)."""

    def validator(key: FlattenKey, data: FlattenDataDict, errors: FlattenErrorDict, context: Context) -> None:
        try:
            data[key] = check(data.get(key))
        except tk.Invalid as e:
            errors[key].append(e.error)
            raise tk.StopOnError

    validator.__name__ = check.__name__
    validator.__doc__ = check.__doc__
    return validator


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return tk._("true or false")
    if isinstance(value, dict):
        return tk._("an object")
    if isinstance(value, (list, tuple, set)):
        return tk._("a list")
    if isinstance(value, (int, float)):
        return tk._("a number")
    if hasattr(value, "filename"):
        return tk._("a file")
    return tk._("a value of another kind")


def _text(value: Any, limit: int) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise tk.Invalid(tk._("Must be text, not {kind}").format(kind=_kind(value)))
    if "\x00" in value:
        raise tk.Invalid(tk._("Must not contain a NUL character (a zero byte)"))
    if len(value) > limit:
        raise tk.Invalid(tk._("Must be at most {limit} characters long (this is {n})").format(
            limit=limit, n=len(value)))
    return value


@stopping
def lgdp_text(value: Any) -> str:
    """Text: a reason, an explanation, a description, a URL."""
    return _text(value, MAX_TEXT)


@stopping
def lgdp_name(value: Any) -> str:
    """A short name: an id, a name, a GSS code, a period label (spaces
    around it are dropped)."""
    return _text(value, MAX_NAME).strip()


@stopping
def lgdp_boolean(value: Any) -> bool:
    """true or false (also yes/no, 1/0, on/off); anything else is refused,
    not read as false."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE:
        return True
    if isinstance(value, str) and value.strip().lower() in _FALSE:
        return False
    shown = value if isinstance(value, str) and len(value) <= 40 and "\x00" not in value else None
    if shown is not None:
        raise tk.Invalid(tk._("Must be true or false, not '{value}'").format(value=shown))
    raise tk.Invalid(tk._("Must be true or false"))


def lgdp_whole_number(minimum: int, maximum: int) -> Callable[..., None]:
    """A whole number from minimum to maximum (given as a number or text)."""

    def validator(value: Any) -> int:
        number: int | None = None
        if isinstance(value, bool):
            number = None
        elif isinstance(value, int):
            number = value
        elif isinstance(value, float) and value.is_integer():
            number = int(value)
        elif isinstance(value, str) and _WHOLE.fullmatch(value.strip()):
            number = int(value.strip())
        if number is None:
            raise tk.Invalid(tk._("Must be a whole number from {minimum} to {maximum}").format(
                minimum=minimum, maximum=maximum))
        if not minimum <= number <= maximum:
            raise tk.Invalid(tk._("Must be between {minimum} and {maximum}").format(minimum=minimum, maximum=maximum))
        return number

    return stopping(validator)


@stopping
def lgdp_iso_date(value: Any) -> datetime.date:
    """A date written YYYY-MM-DD."""
    if isinstance(value, datetime.datetime):
        return value.date()
    if isinstance(value, datetime.date):
        return value
    if isinstance(value, str) and _DATE.fullmatch(value.strip()):
        try:
            return datetime.date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise tk.Invalid(tk._("Must be a date written YYYY-MM-DD, e.g. 2026-03-31"))


def lgdp_choice(choices: Any) -> Callable[..., None]:
    """One of the given words."""
    allowed = tuple(choices)

    def validator(value: Any) -> str:
        if isinstance(value, str) and value.strip() in allowed:
            return value.strip()
        raise tk.Invalid(tk._("Must be one of: {choices}").format(choices=", ".join(allowed)))

    return stopping(validator)


@stopping
def lgdp_name_list(value: Any) -> list[str]:
    """A list of short names, or the same as text separated by commas."""
    if isinstance(value, str):
        value = [part for part in re.split(r"[,\n]", value)]
    if not isinstance(value, (list, tuple)):
        raise tk.Invalid(tk._("Must be a list, or text separated by commas, not {kind}").format(kind=_kind(value)))
    if len(value) > MAX_LIST:
        raise tk.Invalid(tk._("At most {n} items").format(n=MAX_LIST))
    out = []
    for item in value:
        try:
            name = _text(item, MAX_NAME).strip()
        except tk.Invalid as e:
            raise tk.Invalid(tk._("Each item: {message}").format(message=e.error)) from None
        if name:
            out.append(name)
    return list(dict.fromkeys(out))


@stopping
def lgdp_upload_file(value: Any) -> Any:
    """A file sent as a multipart upload, with a name the platform can keep."""
    if not (hasattr(value, "filename") and (hasattr(value, "stream") or hasattr(value, "file"))):
        raise tk.Invalid(tk._("Send the file itself, as a multipart form field named upload (not {kind})").format(
            kind=_kind(value) if not isinstance(value, str) else tk._("text")))
    name = value.filename or ""
    if not isinstance(name, str) or "\x00" in name:
        raise tk.Invalid(tk._("The file's name contains a NUL character (a zero byte): rename the file and send it again"))
    if len(name) > MAX_FILENAME:
        raise tk.Invalid(tk._("The file's name is longer than {n} characters: rename the file and send it again").format(
            n=MAX_FILENAME))
    return value


def lgdp_unknown_parameter(key: FlattenKey, data: FlattenDataDict, errors: FlattenErrorDict, context: Context) -> None:
    """For ``__extras`` and ``__junk``: every parameter the action does not
    take is an error under its own name, with the closest one it takes."""
    value = data.pop(key, None)
    if isinstance(value, dict):
        names = {str(k[0] if isinstance(k, tuple) else k) for k in value}
    elif value is None:
        names = set()
    else:
        names = {key[-1]}
    known = sorted(k for k in context.get("schema_keys", []) if not k.startswith("_"))
    for name in sorted(names):
        label = name if len(name) <= 100 and "\x00" not in name else name[:100].replace("\x00", "\\0") + "..."
        close = difflib.get_close_matches(name[:100], known, n=1)
        if close:
            message = tk._("Not a parameter of this action; did you mean {name}?").format(name=close[0])
        elif known:
            message = tk._("Not a parameter of this action; it takes: {names}").format(names=", ".join(known))
        else:
            message = tk._("Not a parameter: this action takes none")
        errors[(label,)] = [message]


def _shape_errors(data_dict: Any, schema: Schema) -> dict[str, list[str]]:
    """What navl cannot flatten (a list of objects) is refused before it
    tries: CKAN would answer 400 or fail."""
    if not isinstance(data_dict, dict):
        return {"__root": [tk._("The parameters must be an object")]}
    errors: dict[str, list[str]] = {}
    for name, value in data_dict.items():
        if isinstance(value, list) and any(isinstance(item, dict) for item in value):
            if name in schema:
                errors[name] = [tk._("Must not be a list of objects")]
            else:
                errors[str(name)[:100]] = [tk._("Not a parameter of this action")]
    return errors


def validate(schema_func: Callable[[], Schema]) -> Callable[[Action], Action]:
    """ckan.logic.validate, refusing the parameters the schema does not
    name, and marking the action with its schema (``lgdp_schema``)."""

    def full_schema() -> Schema:
        unknown = tk.get_validator("lgdp_unknown_parameter")
        schema = schema_func()
        return {"_": [tk.get_validator("ignore")], "__extras": [unknown], "__junk": [unknown], **schema}

    def decorator(action: Action) -> Action:
        checked = logic.validate(full_schema)(action)

        @functools.wraps(action)
        def wrapper(context: Context, data_dict: Any) -> Any:
            errors = _shape_errors(data_dict, full_schema())
            if errors:
                raise tk.ValidationError(errors)
            return checked(context, data_dict)

        wrapper.lgdp_schema = schema_func  # type: ignore[attr-defined]
        return wrapper

    return decorator
