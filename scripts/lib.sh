# shellcheck shell=bash
# Shared by the scripts (sourced, not run): Debian packages and loopback ports.

# ensure_packages PKG...: installs with apt the Debian packages not installed yet (sudo unless root).
# Sets INSTALLED=1 when it installed any.
ensure_packages() {
  local p missing=() sudo=""
  INSTALLED=0
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  ((${#missing[@]})) || return 0
  [ "$(id -u)" = 0 ] || sudo="sudo"
  echo "installing: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # shellcheck disable=SC2034 # read by the caller
  INSTALLED=1
}

# free_port: a TCP port on 127.0.0.1 nothing listens on right now.
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# port_open PORT: whether something accepts connections on 127.0.0.1:PORT.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
