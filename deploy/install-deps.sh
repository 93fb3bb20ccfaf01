#!/bin/bash
# Install everything wglb needs to build, test, benchmark and run its demo
# on Debian 12 (the list: deploy/packages.txt). Run as root. Safe to rerun.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends \
	$(grep -v '^#' "$(dirname "$0")/packages.txt")
