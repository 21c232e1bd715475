#!/usr/bin/env bash
# Assembles the build context of the Tessera container image (packaging/container/Containerfile)
# from a built binary: the binary, every shared library `ldd` lists for it and the dynamic
# loader, /etc/passwd and /etc/group naming the unprivileged user `tessera` (uid 10001), the
# CA certificates of this machine, a /tmp, and the data directory the image declares as its
# volume. The image is then built FROM scratch: nothing is pulled from a registry.
#
# Usage: stage.sh BINARY CONTEXT_DIR   (CONTEXT_DIR is created; it must not exist yet)
set -euo pipefail

if [ $# -ne 2 ]; then
    echo "usage: $0 BINARY CONTEXT_DIR" >&2
    exit 2
fi
binary=$1
context=$2
here=$(cd "$(dirname "$0")" && pwd)

if [ ! -x "$binary" ] || [ -d "$binary" ]; then
    echo "$0: $binary is not an executable file (build it first: cargo build --release -p tessera)" >&2
    exit 1
fi
if [ -e "$context" ]; then
    echo "$0: $context already exists; give a new directory" >&2
    exit 1
fi
if ! command -v ldd >/dev/null; then
    echo "$0: ldd is needed to list the binary's shared libraries" >&2
    exit 1
fi

root=$context/rootfs
mkdir -p "$root/usr/local/bin" "$root/etc/ssl/certs" "$root/tmp" "$context/data"
chmod 1777 "$root/tmp"
install -m 0755 "$binary" "$root/usr/local/bin/tessera"

# Every library the binary links and the loader, each copied (symlinks followed) to the path
# ldd names, which is where the loader looks for it at run time.
libs=$(ldd "$binary" | awk '
    $2 == "=>" && $3 ~ /^\// { print $3; next }
    $1 ~ /^\// { print $1 }
')
if [ -z "$libs" ]; then
    echo "$0: ldd lists no libraries for $binary; is it a dynamically linked binary for this machine?" >&2
    exit 1
fi
for lib in $libs; do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
done

# glibc reads these to resolve names (files, then DNS) and the user's name.
printf 'hosts: files dns\n' >"$root/etc/nsswitch.conf"
printf 'root:x:0:0:root:/nonexistent:/usr/sbin/nologin\ntessera:x:10001:10001:Tessera:/var/lib/tessera:/usr/sbin/nologin\n' >"$root/etc/passwd"
printf 'root:x:0:\ntessera:x:10001:\n' >"$root/etc/group"

# CA certificates, for the HTTPS calls Tessera makes (upstream OpenID providers, JWKS URLs).
for bundle in /etc/ssl/certs/ca-certificates.crt /etc/pki/tls/certs/ca-bundle.crt; do
    if [ -f "$bundle" ]; then
        cp -L "$bundle" "$root/etc/ssl/certs/ca-certificates.crt"
        break
    fi
done

cp "$here/Containerfile" "$context/Containerfile"
echo "staged $context: $(du -sh "$root" | cut -f1) ($(echo "$libs" | wc -w) libraries)"
