"""Bound the JSON Streamlit parses from a visitor's component values: `install()` once per process.

Why this exists (issue 20): the studio and the drawing pad are Custom Components v2. What their
JavaScript sends (setStateValue, setTriggerValue) reaches the server as JSON text, and Streamlit
parses it in its own code, before any callback of the app runs:

- streamlit/runtime/state/common.py, `unpack_widget_state_value`: `json.loads` of a state value,
  no error handled;
- streamlit/components/v2/bidi_component/serialization.py, `handle_deserialize` (trigger values)
  and `BidiComponentSerde.deserialize` (state values): `json.loads`, catching only
  JSONDecodeError (and TypeError).

A value nested deeper than Python's recursion limit (~1,000 levels: `[[[[...]]]]`, 2 KB suffices;
the issue sent 100,000) makes `json.loads` raise RecursionError there. Streamlit then shows its
error element instead of the page, and because the value stays in the session's widget state,
every later rerun of that session fails the same way until the page is reloaded (measured with
bench.hostile_server on Streamlit 1.67). Other sessions are not affected, and the server survives.

The app cannot catch it: no app code runs before that parse, and the component API takes no
deserializer. Raising the recursion limit is no fix (the C decoder would then overflow the thread's
C stack and kill the server). So this module gives exactly those two Streamlit modules a `json`
whose `loads` treats a value nested too deeply as no value (None): Streamlit's own code then takes
its "cleared value" path, the app's callbacks see nothing, and the page runs. Everything else of
`json` is the standard module. If a Streamlit upgrade moves these parses, `install()` logs a
warning and tests/test_hostile.py fails, so the next person knows to look again.
"""

from __future__ import annotations

import importlib
import json
import logging
import types
from typing import Any

logger = logging.getLogger(__name__)

#: The Streamlit modules that parse component values from the browser with their global `json`.
PARSING_MODULES = ("streamlit.runtime.state.common", "streamlit.components.v2.bidi_component.serialization")


def bounded_loads(s: Any, *args: Any, **kwargs: Any) -> Any:
    """`json.loads`, except that a document nested past the recursion limit is None (logged)."""
    try:
        return json.loads(s, *args, **kwargs)
    except RecursionError:
        logger.warning("dropped a component value nested too deeply to parse (%d characters)", len(s))
        return None


#: `json` for the modules above: the standard module with `loads` bounded.
bounded_json = types.SimpleNamespace(**{name: getattr(json, name) for name in json.__all__})
bounded_json.loads = bounded_loads


def install() -> bool:
    """Give Streamlit's component-value parsers the bounded `json`; True if all were found."""
    ok = True
    for name in PARSING_MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError:
            module = None
        if module is None or getattr(module, "json", None) not in (json, bounded_json):
            logger.warning("%s no longer parses with a module-level json: component values are not bounded", name)
            ok = False
            continue
        module.json = bounded_json
    return ok
