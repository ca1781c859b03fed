"""Where one instance keeps its files: everything under --home DIR, else the XDG base directories."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Paths:
    config_file: Path
    data_dir: Path
    runtime_dir: Path

    @property
    def identity_dir(self) -> Path:
        return self.data_dir / "identity"

    @property
    def cache_file(self) -> Path:
        return self.data_dir / "cache.sqlite"

    @property
    def history_file(self) -> Path:
        return self.data_dir / "history.jsonl"

    @property
    def control_socket(self) -> Path:
        return self.runtime_dir / "zcall.sock"

    @classmethod
    def for_home(cls, home: Path) -> Paths:
        home = home.expanduser().resolve()
        return cls(config_file=home / "config.toml", data_dir=home / "data", runtime_dir=home / "run")

    @classmethod
    def from_environment(cls, env: dict[str, str] | None = None) -> Paths:
        env = dict(os.environ) if env is None else env
        user_home = Path(env.get("HOME", str(Path.home())))
        config_home = Path(env.get("XDG_CONFIG_HOME") or user_home / ".config")
        data_home = Path(env.get("XDG_DATA_HOME") or user_home / ".local" / "share")
        runtime = env.get("XDG_RUNTIME_DIR")
        runtime_dir = Path(runtime) / "zcall" if runtime else data_home / "zcall" / "run"
        return cls(
            config_file=config_home / "zcall" / "config.toml",
            data_dir=data_home / "zcall",
            runtime_dir=runtime_dir,
        )

    @classmethod
    def resolve(cls, home: str | Path | None, config_file: str | Path | None = None) -> Paths:
        paths = cls.for_home(Path(home)) if home is not None else cls.from_environment()
        if config_file is not None:
            paths = cls(Path(config_file).expanduser(), paths.data_dir, paths.runtime_dir)
        return paths

    def ensure_private_dirs(self) -> None:
        """Create the data and runtime folders, readable by this user only."""
        for directory in (self.data_dir, self.runtime_dir, self.identity_dir):
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.chmod(directory, 0o700)
