#!/usr/bin/env bash
# Installs the interop tests' non-Rust peers, pinned, into target/sdk-peers (or
# $INVOKE_SDK_PEERS): boto3 (crates/interop/peers/requirements.txt, with --no-deps: every
# package is listed) and the AWS SDK for JavaScript v3 Lambda client (package.json and
# package-lock.json there, installed with `npm ci`). Nothing is installed outside that
# directory. A peer already installed from the same pins is kept.
set -euo pipefail
cd "$(dirname "$0")/.."
peers=crates/interop/peers
dest="${INVOKE_SDK_PEERS:-target/sdk-peers}"
mkdir -p "$dest"

if cmp -s "$peers/requirements.txt" "$dest/python.pins" 2>/dev/null; then
  echo "boto3: already installed in $dest/python"
else
  rm -rf "$dest/python" "$dest/python.pins"
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
    --no-deps --target "$dest/python" -r "$peers/requirements.txt"
  cp "$peers/requirements.txt" "$dest/python.pins"
  echo "boto3: installed in $dest/python"
fi

if cmp -s "$peers/package-lock.json" "$dest/node/package-lock.json" 2>/dev/null &&
  [ -d "$dest/node/node_modules/@aws-sdk/client-lambda" ]; then
  echo "AWS SDK for JavaScript v3: already installed in $dest/node"
else
  rm -rf "$dest/node"
  mkdir -p "$dest/node"
  cp "$peers/package.json" "$peers/package-lock.json" "$dest/node/"
  (cd "$dest/node" && npm ci --silent --no-audit --no-fund)
  echo "AWS SDK for JavaScript v3: installed in $dest/node"
fi
