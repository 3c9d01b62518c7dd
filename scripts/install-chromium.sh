#!/usr/bin/env bash
# Installs headless Chromium from Debian's packages, for the test that renders the demo's report
# (Tests/AlignKitAlignmentTests/ReportRenderingTests.swift). Idempotent; uses sudo when not root.
set -euo pipefail
if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
  echo "chromium: $(chromium --version 2>/dev/null || chromium-browser --version)"
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "no apt-get here: install Chromium yourself (the report rendering test is skipped without it)" >&2
  exit 1
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
echo "installed $(chromium --version)"
