"""Input components that take anything an API client sends.

Gradio's own Radio, Dropdown, Slider and CheckboxGroup answer an unexpected value with an error that repeats the
input (10,000 ids → a 100 KB message) or with an internal exception (a string for a number). These pass None, or
only the known values, and the UI controller treats that as "not given". `is_template` makes the frontend render
each as the component it extends.

They live in their own module because Gradio writes a `.pyi` stub next to every file that defines a component;
`inputs.pyi` is committed, so importing the app never changes the source tree.
"""
from __future__ import annotations

import math
from typing import Any

import gradio as gr

MAX_VALUES = 200  # values of a list input looked at; the controller keeps far fewer


class PickList(gr.CheckboxGroup):
    """Checkboxes: values that are not among this session's choices are dropped."""

    is_template = True

    def preprocess(self, payload: Any) -> list[str]:
        known = {value for _, value in self.choices}
        return [v for v in (payload if isinstance(payload, list) else [])[:MAX_VALUES]
                if isinstance(v, str) and v in known]


class Choice(gr.Radio):
    """One of the choices, or None."""

    is_template = True

    def preprocess(self, payload: Any) -> Any:
        return payload if isinstance(payload, str) and payload in {v for _, v in self.choices} else None


class ChoiceMenu(gr.Dropdown):
    """One of the choices, or None."""

    is_template = True

    def preprocess(self, payload: Any) -> Any:
        return payload if isinstance(payload, str) and payload in {v for _, v in self.choices} else None


class Count(gr.Slider):
    """A finite number within the slider's range, or None."""

    is_template = True

    def preprocess(self, payload: Any) -> float | None:
        ok = (isinstance(payload, (int, float)) and not isinstance(payload, bool) and math.isfinite(payload)
              and self.minimum <= payload <= self.maximum)
        return float(payload) if ok else None
