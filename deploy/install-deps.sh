#!/bin/bash
# Install everything wglb needs to build, test, benchmark and run its demo
# on Debian 12. Run as root. Safe to run again.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends \
	build-essential pkg-config meson ninja-build \
	liburing-dev libsodium-dev libmnl-dev libcmocka-dev libb2-dev libsystemd-dev \
	clang libclang-rt-14-dev \
	python3 iproute2 iputils-ping nftables curl procps util-linux tmux \
	wireguard-go wireguard-tools \
	nginx libnginx-mod-stream prometheus gnuplot-nox keepalived systemd cloud-init
