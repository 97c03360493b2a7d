"""axe-core, the accessibility engine the browser tests load into each page, from the npm registry at a pinned version.

Installed into .axe/ (ignored by git) rather than vendored: the minified engine is half a megabyte of someone else's
build that would need its MPL-2.0 notice kept beside it, and npm checks the package's integrity on every install.
`make browser` installs it; the tests install it themselves when it is missing. `python -m tests.browser.axe` too.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

AXE_VERSION = "4.14.1"
ROOT = Path(__file__).resolve().parents[2]
AXE_DIR = ROOT / ".axe"
AXE_SCRIPT = AXE_DIR / "node_modules" / "axe-core" / "axe.min.js"
IMPACTS_THAT_FAIL = ("serious", "critical")


def installed_version() -> str | None:
    package = AXE_SCRIPT.parent / "package.json"
    if not package.exists():
        return None
    return json.loads(package.read_text())["version"]


def ensure_axe() -> Path:
    """The path of axe.min.js at AXE_VERSION, installing it with npm first when needed."""
    if installed_version() == AXE_VERSION:
        return AXE_SCRIPT
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is missing: the accessibility check loads axe-core from the npm registry "
                           "(`apt-get install npm`).")
    AXE_DIR.mkdir(exist_ok=True)
    subprocess.run([npm, "install", "--prefix", str(AXE_DIR), "--no-audit", "--no-fund", "--ignore-scripts",
                    f"axe-core@{AXE_VERSION}"], check=True, capture_output=True, text=True)
    if installed_version() != AXE_VERSION:
        raise RuntimeError(f"npm did not install axe-core {AXE_VERSION} into {AXE_DIR}")
    return AXE_SCRIPT


def serious_violations(page) -> list[dict]:  # noqa: ANN001 - a Playwright page
    """axe-core's violations of serious or critical impact on the page as it is now."""
    # Evaluated through the DevTools protocol, which the page's Content-Security-Policy (script-src 'self') does not
    # govern: a <script> tag with the engine inline would be refused, as it should be.
    page.evaluate(f"() => {{ {ensure_axe().read_text()}\n; return typeof window.axe; }}")
    results = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [
        {"id": v["id"], "impact": v["impact"], "help": v["help"],
         "nodes": [node["target"] for node in v["nodes"]][:5]}
        for v in results["violations"] if v["impact"] in IMPACTS_THAT_FAIL
    ]


if __name__ == "__main__":
    print(ensure_axe())
