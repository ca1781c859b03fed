"""Settings: audio input/output (live level meter, the speaker-to-microphone test of `zcall audio test`),
unit name, server account, preferred SAS type.
Saved to config.toml through zcall.config, which checks every value; most take effect at the next start."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Footer, Input, Label, Select, Static

from zcall import config as configmod
from zcall.media.audio import AudioSource, AudioSpecError
from zcall.media.audiospec import open_source
from zcall.settings import PhoneSettings
from zcall.tui.model import CallView
from zcall.tui.screens.base import ZScreen
from zcall.tui.widgets.meter import level_text, rms_dbfs

SAS_CHOICES = [("words first (B256)", "B256"), ("characters first (B32)", "B32")]
FIELDS = [  # (input id, label, section, key)
    ("name", "Unit name", "unit", "name"),
    ("audio_in", "Audio input", "audio", "input"),
    ("audio_out", "Audio output", "audio", "output"),
    ("server_uri", "Server URI", "server", "uri"),
    ("server_user", "Server user", "server", "user"),
    ("server_password", "Password", "server", "password"),
]
PLACEHOLDERS = {
    "name": "the host name",
    "audio_in": "default | DEVICE | tone:HZ | silence",
    "audio_out": "default | DEVICE | null",
    "server_uri": "none: LAN only",
}
TEST_S = 2.0  # the sweep twice
METER_S = 0.1


EFFECT_LABELS = ("Unit", "Network", "Audio", "Calls", "Security", "Server")


def in_effect(settings: PhoneSettings, sip_uri: str, volume: int) -> list[tuple[str, str]]:
    """What the running phone uses (config file plus command-line options), as (label, value) lines.
    The password is never shown, only whether one is set."""
    server = "none (LAN only)"
    if settings.server_uri:
        user = f" as {settings.server_user}" if settings.server_user else ""
        secret = ", password set" if settings.server_password else ""
        proxy = f", via {settings.outbound_proxy}" if settings.outbound_proxy else ""
        server = f"{settings.server_uri}{user}{secret}{proxy}"
    return [
        ("Unit", f"{settings.name} · {sip_uri}" if sip_uri else settings.name),
        (
            "Network",
            f"bind {settings.bind or 'all interfaces'} · SIP port {settings.sip_port} · "
            f"RTP port {settings.rtp_port or 'any'} · mDNS {'on' if settings.mdns else 'off'}",
        ),
        ("Audio", f"in {settings.audio_in} · out {settings.audio_out} · volume {volume}%"),
        (
            "Calls",
            f"auto-answer {settings.auto_answer.value} · "
            f"on mismatch: {settings.on_mismatch}",
        ),
        (
            "Security",
            f"SAS {', '.join(settings.sas_types)} · key agreement {', '.join(settings.key_agreements)}",
        ),
        ("Server", server),
    ]


def with_values(config: configmod.Config, values: dict[str, str], sas_first: str) -> configmod.Config:
    """The config with the form's values, checked by the same rules as a config file (ConfigError)."""
    data: dict[str, Any] = configmod.as_dict(config)
    for field_id, _label, section, key in FIELDS:
        data[section][key] = values[field_id]
    order = [sas_first] + [t for t in config.security.sas_types if t != sas_first]
    if sas_first not in config.security.sas_types:
        order = [sas_first, *config.security.sas_types]
    data["security"]["sas_types"] = order
    for section in data.values():
        for key, value in section.items():
            if isinstance(value, tuple):
                section[key] = list(value)
    return configmod.from_mapping(data)


class SettingsScreen(ZScreen):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "save", "Save"),
        Binding("ctrl+t", "audio_test", "Audio test"),
        Binding("escape", "app.pop_screen", "Back", priority=True),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._source: AudioSource | None = None
        self._test: asyncio.Task[None] | None = None

    def compose(self) -> ComposeResult:
        config = self.zapp.config
        yield Static("Settings", classes="title")
        with VerticalScroll(id="body"):
            yield Static("In effect now", classes="section")
            with Vertical(id="in_effect"):
                for label in EFFECT_LABELS:
                    with Horizontal(classes="row"):
                        yield Label(label)
                        yield Static("", id=f"effect_{label.lower()}", classes="value")
            yield Static(f"Saved in {self.zapp.paths.config_file.name} (next start)", classes="section")
            for field_id, label, section, key in FIELDS:
                with Horizontal(classes="row"):
                    yield Label(label)
                    yield Input(
                        str(getattr(getattr(config, section), key)),
                        placeholder=PLACEHOLDERS.get(field_id, ""),
                        id=field_id,
                        password=field_id == "server_password",
                        compact=True,
                        max_length=256,
                    )
            with Horizontal(classes="row"):
                yield Label("SAS type")
                yield Select(
                    SAS_CHOICES,
                    value=config.security.sas_types[0],
                    allow_blank=False,
                    id="sas_type",
                    compact=True,
                )
            yield Static("", id="level", classes="line")
            yield Static(
                "Ctrl+S saves; changes apply at the next start. Ctrl+T tests speaker and microphone.",
                classes="hint",
            )
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#name", Input).focus()
        self._open_meter()
        self.watch(self.app, "calls", self._follow_calls, init=False)
        self.watch(self.app, "me", self._show_in_effect)
        self.watch(self.app, "volume", self._show_in_effect)
        if self.zapp.live:
            self.set_interval(METER_S, self._measure)
        self._measure()

    def on_unmount(self) -> None:
        self._close_meter()
        if self._test is not None:
            self._test.cancel()

    def _show_in_effect(self) -> None:
        for label, value in in_effect(self.zapp.settings, self.zapp.view.sip_uri, self.zapp.volume):
            self.query_one(f"#effect_{label.lower()}", Static).update(value)

    # --- level meter ---

    def _open_meter(self) -> None:
        """Listen on the input only while no call needs it and only in live mode."""
        if not self.zapp.live or self.zapp.view.active is not None:
            return
        spec = self.query_one("#audio_in", Input).value.strip() or "default"
        try:
            self._source = open_source(spec)
        except (AudioSpecError, OSError, ValueError) as exc:
            self.zapp.note(f"settings: cannot open audio input {spec!r}: {exc}")
            self._source = None

    def _close_meter(self) -> None:
        if self._source is not None:
            with contextlib.suppress(Exception):
                self._source.close()
            self._source = None

    def _measure(self) -> None:
        level = None
        if self._source is not None:
            frame = self._source.read_frame()
            level = rms_dbfs(frame) if frame is not None else None
        self.query_one("#level", Static).update(level_text(level))

    def on_input_changed(self, message: Input.Changed) -> None:
        if message.input.id == "audio_in" and self._source is not None:
            self._close_meter()
            self._open_meter()

    # --- audio test ---

    def action_audio_test(self) -> None:
        if self._test is not None and not self._test.done():
            return
        audio_in = self.query_one("#audio_in", Input).value.strip() or "default"
        audio_out = self.query_one("#audio_out", Input).value.strip() or "default"
        self._test = asyncio.get_running_loop().create_task(self._audio_test(audio_in, audio_out))

    async def _audio_test(self, audio_in: str, audio_out: str) -> None:
        """`zcall audio test`'s own code: a sweep on the output, recorded from the input, judged."""
        from zcall import audiocmd  # numpy: loaded when the test is asked for

        self._close_meter()  # the test needs the microphone
        try:
            result = await asyncio.to_thread(audiocmd.run_test, audio_in, audio_out, TEST_S)
        except (AudioSpecError, OSError, ValueError) as exc:
            self.notify(f"audio test: {exc}", severity="error")
            return
        finally:
            if not any(call.ended is None for call in self.zapp.calls.values()):
                self._open_meter()
        text = audiocmd.format_test(result)
        self.zapp.note(f"settings: audio test: {' / '.join(text.splitlines())}")
        self.notify(text, title="Audio test", timeout=15)

    # --- saving ---

    def action_save(self) -> None:
        values = {field_id: self.query_one(f"#{field_id}", Input).value.strip() for field_id, *_ in FIELDS}
        sas = self.query_one("#sas_type", Select).value
        try:
            config = with_values(self.zapp.config, values, str(sas))
            configmod.save(config, self.zapp.paths.config_file)
        except (configmod.ConfigError, OSError) as exc:
            self.notify(str(exc), title="Not saved", severity="error", timeout=10)
            return
        self.zapp.config = config
        self.zapp.note(f"settings: saved {self.zapp.paths.config_file}")
        self.notify("Saved. Restart zcall to apply.", title="Settings")

    def _follow_calls(self, calls: dict[str, CallView]) -> None:
        # A call took the audio devices: stop listening; it ended: listen again.
        if any(call.ended is None for call in calls.values()):
            self._close_meter()
        elif self._source is None:
            self._open_meter()
