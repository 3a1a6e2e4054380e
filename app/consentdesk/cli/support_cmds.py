"""``consentdesk support-bundle``: one zip for the help desk, with nothing private in it.

It holds the logs, the versions of the app and its platform, and the effective
settings with where each came from. Logs are redacted again on the way in (they
already are when written), agent identity is blanked, URL credentials and query
values are dropped, and the home folder is shown as ``~``. Tokens live only in the
OS keyring and are never read here. Zip, platform and package-metadata modules are
imported when the bundle is written, not when the parser is built (``consentdesk
call`` builds it too and must return at once).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from consentdesk import __version__
from consentdesk.cli.common import Context, UsageError
from consentdesk.platform import logs
from consentdesk.platform.config import SETTINGS, site_config_files

REDACTED = "[redacted]"
# Settings that identify a person (the agent); shown only as set / not set.
PERSONAL_SETTINGS = frozenset({"general.agent", "general.agent_name"})
PACKAGES = (
    "PySide6-Essentials",
    "shiboken6",
    "httpx",
    "keyring",
    "platformdirs",
    "phonenumberslite",
)

README = """Consent Desk support bundle

versions.json  app, Python, Qt and OS versions
config.json    effective settings: value, source (default/site/user/managed), locked
paths.json     where settings, data and logs live on this machine
logs/          the app's rotated log files

Redacted: phone numbers, SIP/tel users and e-mail addresses in logs; the agent's
id and name; credentials and query values in URLs; the home folder path.
No tokens: they live only in the OS keyring.
"""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "support-bundle",
        help="write a zip of logs, versions and settings for the help desk (redacted)",
        description="Write a zip of logs, versions and settings for the help desk. "
        "Personal data and secrets are redacted.",
    )
    parser.add_argument(
        "--output",
        metavar="FILE.zip",
        help="where to write it (default: consentdesk-support-<time>.zip here)",
    )
    parser.set_defaults(handler=support_bundle)


def support_bundle(args: argparse.Namespace, ctx: Context) -> int:
    output = Path(args.output) if args.output else default_output()
    if output.suffix.lower() != ".zip":
        raise UsageError(f"--output must name a .zip file, not {output.name}")
    if not output.parent.is_dir():
        raise UsageError(f"folder {output.parent} does not exist")
    write_bundle(output, ctx)
    print(output)
    return 0


def default_output() -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return Path.cwd() / f"consentdesk-support-{stamp}.zip"


def write_bundle(output: Path, ctx: Context) -> None:
    """Write the bundle atomically: a half-written zip never sits at ``output``."""
    import tempfile
    import zipfile

    fd, tmp_name = tempfile.mkstemp(prefix=".support-", suffix=".zip", dir=output.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
            bundle.writestr("README.txt", README)
            bundle.writestr("versions.json", _json(versions()))
            bundle.writestr("config.json", _json(effective_config(ctx)))
            bundle.writestr("paths.json", _json(paths(ctx)))
            for path in logs.log_files():
                text = path.read_text(encoding="utf-8", errors="replace")
                bundle.writestr(f"logs/{path.name}", logs.redact(text))
        os.replace(tmp, output)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise UsageError(f"cannot write {output}: {exc.strerror}") from None


def versions() -> dict[str, Any]:
    import platform
    from importlib import metadata

    info: dict[str, Any] = {
        "consentdesk": __version__,
        "frozen": bool(getattr(sys, "frozen", False)),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "os": platform.system(),
        "os_release": platform.release(),
        "os_version": platform.version(),
        "machine": platform.machine(),
        "qt": _qt_version(),
        "packages": {},
    }
    if sys.platform.startswith("linux"):
        try:
            info["linux"] = platform.freedesktop_os_release().get("PRETTY_NAME", "")
        except OSError:
            info["linux"] = ""
        info["session"] = os.environ.get("XDG_SESSION_TYPE", "")
    for name in PACKAGES:
        try:
            info["packages"][name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            info["packages"][name] = None
    return info


def _qt_version() -> dict[str, str] | None:
    try:
        import PySide6
        from PySide6 import QtCore
    except ImportError:
        return None
    return {"pyside6": PySide6.__version__, "qt_runtime": QtCore.qVersion()}


def effective_config(ctx: Context) -> dict[str, Any]:
    config = ctx.config
    out: dict[str, Any] = {}
    for setting in SETTINGS:
        value = config.get(setting.key)
        out[setting.key] = {
            "value": redact_setting(setting.key, value),
            "source": config.source(setting.key),
            "locked": config.is_locked(setting.key),
        }
    return out


def redact_setting(key: str, value: Any) -> Any:
    if key in PERSONAL_SETTINGS:
        return REDACTED if value else ""
    if isinstance(value, str):
        return _home(logs.redact(_strip_url_secrets(value)))
    if isinstance(value, tuple | list):
        return [redact_setting(key, v) for v in value]
    return value


def _strip_url_secrets(text: str) -> str:
    """Drop user:password and query values from a URL; other text passes unchanged."""
    if "://" not in text:
        return text
    parts = urlsplit(text)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{REDACTED}@{netloc.rsplit('@', 1)[1]}"
    query = "&".join(
        f"{pair.split('=', 1)[0]}={REDACTED}" for pair in parts.query.split("&") if pair
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def _home(text: str) -> str:
    home = str(Path.home())
    return text.replace(home, "~") if home not in ("", "/") else text


def paths(ctx: Context) -> dict[str, Any]:
    from consentdesk.platform.policy import POLICY_LABEL

    user_file = ctx.config.user_file
    return {
        "user_config": _home(str(user_file)) if user_file else None,
        "site_config": [
            {"path": _home(str(p)), "exists": p.is_file()} for p in site_config_files()
        ],
        "policy": POLICY_LABEL if sys.platform == "win32" else None,
        "data_dir": _home(str(ctx.data_dir)),
        "log_dir": _home(str(logs.default_log_dir())),
    }


def _json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False) + "\n"
