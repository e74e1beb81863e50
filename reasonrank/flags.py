"""Config dataclasses ⇄ command-line flags, in both directions.

One table of `Flag`s per command binds each option to a field path such as
"window.generation.seed". The same table builds the argparse parser, turns parsed arguments into
the config, and renders a config back into the argv that reproduces it — so a UI form over the
config can always show (and a job runner can always run) the exact equivalent command.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from reasonrank.io import InputError


@dataclass(frozen=True)
class Flag:
    """One command-line option bound to a config field path such as "window.generation.seed"."""

    name: str
    path: str
    help: str
    type: Callable[[str], Any] = str
    kind: str = "value"  # "value" | "switch" (store_true) | "repeat" (append) | "positional"
    choices: tuple[str, ...] | None = None
    required: bool = False
    anchor: bool = False  # rendered whenever its optional config part exists, even at its default
    render: Callable[[Any], str] = str
    #: `(config, value) -> config`, applied before every other flag (e.g. a method's defaults,
    #: which the user's other flags then override); the value is also set at `path`.
    preset: Callable[[Any, Any], Any] | None = None

    @property
    def dest(self) -> str:
        return self.name.lstrip("-").replace("-", "_")


class StrictParser(argparse.ArgumentParser):
    """argparse that raises instead of printing usage, so every user error is one line."""

    def error(self, message: str):  # type: ignore[override]
        raise InputError(message)


@dataclass(frozen=True)
class FlagTable:
    """The flags of one command plus its optional config parts.

    `parts` names top-level fields that default to None (e.g. an optional reranker) and the
    factory that creates them when one of their flags is given.
    """

    flags: Sequence[Flag]
    parts: Mapping[str, Callable[[], Any]] = field(default_factory=dict)

    def add_to(self, parser: argparse.ArgumentParser, defaults: Any) -> None:
        """Declare every flag; help texts show the default each one falls back to."""
        for flag in self.flags:
            help_text = self._help_with_default(flag, defaults).replace("%", "%%")
            common = {"dest": flag.dest, "help": help_text, "default": argparse.SUPPRESS}
            if flag.kind == "positional":
                del common["dest"]
                parser.add_argument(
                    flag.dest,
                    metavar=flag.name.upper(),
                    type=flag.type,
                    choices=flag.choices,
                    nargs=None if flag.required else "?",
                    **common,
                )
            elif flag.kind == "switch":
                parser.add_argument(flag.name, action="store_true", **common)
            elif flag.kind == "repeat":
                parser.add_argument(flag.name, action="append", type=flag.type, **common)
            else:
                parser.add_argument(flag.name, type=flag.type, choices=flag.choices, required=flag.required, **common)

    def config_from(self, args: argparse.Namespace, config: Any) -> Any:
        """`config` with every flag the user gave set (flags not given keep the config's value);
        presets first, so the other flags override what a preset chose."""
        for flag in self.flags:
            if flag.preset is not None and hasattr(args, flag.dest):
                config = flag.preset(config, getattr(args, flag.dest))
        for flag in self.flags:
            if hasattr(args, flag.dest):
                config = self._set(config, flag.path, getattr(args, flag.dest))
        return config

    def to_argv(self, config: Any) -> list[str]:
        """The flags that parse back to `config`; values equal to their default are left out.

        Positional arguments come first, in table order, followed by the options.
        """
        argv: list[str] = []
        baseline = self._preset_baseline(config)
        for flag in self.flags:
            if flag.kind == "positional":
                value = _get(config, flag.path)
                if value not in (None, ""):
                    argv.append(flag.render(value))
        for flag in self.flags:
            if flag.kind == "positional":
                continue
            head = flag.path.split(".")[0]
            if head in self.parts and getattr(config, head) is None:
                continue
            value = _get(config, flag.path)
            default = self._default(config, flag.path, None if flag.preset else baseline)
            if value == default and not (flag.required or flag.anchor):
                continue
            if flag.kind == "switch":
                if value:
                    argv.append(flag.name)
            elif flag.kind == "repeat":
                for item in value:
                    argv += [flag.name, flag.render(item)]
            else:
                argv += [flag.name, flag.render(value)]
        return argv

    # -------------------------------------------------------------------------------- internals
    def _set(self, obj: Any, path: str, value: Any) -> Any:
        """A copy of `obj` with the field at `path` set; frozen dataclasses are rebuilt on the way."""
        head, _, rest = path.partition(".")
        if not rest:
            return replace(obj, **{head: value})
        child = getattr(obj, head)
        if child is None:
            child = self.parts[head]()
        return replace(obj, **{head: self._set(child, rest, value)})

    def _preset_baseline(self, config: Any) -> Any:
        """A fresh config with the presets `config` carries applied (None when it carries none):
        what parsing sets before the other flags, so a flag equal to it can be left out."""
        baseline = None
        for flag in self.flags:
            if flag.preset is None:
                continue
            value = _get(config, flag.path)
            if value != self._default(config, flag.path):
                baseline = flag.preset(baseline if baseline is not None else type(config)(), value)
        return baseline

    def _default(self, config: Any, path: str, baseline: Any = None) -> Any:
        """The value the field at `path` has in a freshly made parent object (what a flag omits),
        or in `baseline` when presets made one."""
        head, _, _ = path.partition(".")
        if baseline is not None and head not in self.parts:
            return _get(baseline, path)
        if head in self.parts and getattr(config, head) is None:
            config = replace(config, **{head: self.parts[head]()})
        parent_path, _, name = path.rpartition(".")
        parent = _get(config, parent_path) if parent_path else config
        return getattr(type(parent)(), name)

    def _help_with_default(self, flag: Flag, defaults: Any) -> str:
        if flag.kind not in ("value", "positional") or "default:" in flag.help:
            return flag.help
        default = self._default(defaults, flag.path)
        if default in (None, ""):
            return flag.help
        return f"{flag.help} (default: {default})"


def _get(obj: Any, path: str) -> Any:
    for name in path.split("."):
        if obj is None:
            return None
        obj = getattr(obj, name)
    return obj
