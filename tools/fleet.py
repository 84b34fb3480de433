# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A local fleet on one machine: one sandbox per inventory host, reached over SSH.

    python3 tools/fleet.py up   [-i inventories/fleet]   start every host (idempotent)
    python3 tools/fleet.py down [-i inventories/fleet]   stop them, remove every file made
    python3 tools/fleet.py load-image --image NAME:TAG [--from-host HOST]
        copy an image into every app host's engine that lacks it

Each host is a mount, UTS and PID namespace whose root is an overlayfs over the machine's
/ (the host's writes land in its own upper directory), with its own /run, /tmp and
/proc, and an sshd bound to the host's own 127.0.0.x:22 as PID 1. Hosts of the
``app`` group also get a dockerd of their own beside the machine's, run in the host's
namespaces with a real directory as its data root; its socket is the host's
/var/run/docker.sock. docs/fleet.md explains why.

Everything lives under STATE_DIR; ``down`` removes it. Run as root. Standard library
only: the inventory is read with ansible-inventory, so the one parser is Ansible's.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_INVENTORY = os.path.join(REPO_ROOT, "inventories", "fleet")
# The reference app's build context, copied into each app host when its sandbox is made: a
# sandbox has its own /tmp, /run and masked directories, so a checkout there is out of its sight.
APP_SOURCE = os.path.join(REPO_ROOT, "examples", "app")
APP_CONTEXT = "/opt/unitehub/app-context"  # inventories/fleet/group_vars/all.yml names it too
STATE_DIR = "/var/lib/unitehub-fleet"  # inventories/fleet/group_vars/all.yml names it too
DOCKER_GROUP = "app"  # hosts that get a Docker engine of their own
SSHD = "/usr/sbin/sshd"
DOCKERD = shutil.which("dockerd") or "/usr/sbin/dockerd"
START_TIMEOUT = 30.0  # seconds for an sshd or dockerd to answer
STOP_TIMEOUT = 20.0  # seconds for a process to exit after SIGTERM
# What an app host's dockerd must be told, whatever else the inventory's
# docker_engine_daemon_options say: no bridge, no iptables, nothing leaves loopback.
DOCKERD_REQUIRED = {
    "bridge": "none",
    "iptables": False,
    "ip6tables": False,
    "ip-forward": False,
    "ip-masq": False,
}
# Directories of the machine a host must not see through the overlay, so that every host
# starts from nothing, as a freshly installed one: the fleet's own state (other hosts'
# files, the client key); the machine's unitehub config, state and logs; its Docker
# config and engine key; and what the local stack's roles wrote for nginx, PostgreSQL,
# PgBouncer and Redis (sites, upstreams, clusters, data, logs). Made opaque, with the
# machine's owner and mode, in the host's upper dir.
MASKED_DIRS = (STATE_DIR, "/etc/unitehub", "/var/lib/unitehub", "/var/log/unitehub", "/etc/docker",
               "/etc/nginx/conf.d", "/etc/nginx/unitehub", "/etc/nginx/tls",
               "/etc/postgresql", "/var/lib/postgresql", "/var/log/postgresql",
               "/etc/pgbouncer", "/var/lib/redis", "/var/log/redis")


class FleetError(RuntimeError):
    """A step of up or down failed; the message says which and why."""


def run(argv, timeout=120, **kwargs):
    """Run a command for at most timeout seconds, raising FleetError with its output
    when it fails."""
    try:
        result = subprocess.run(argv, capture_output=True, text=True, check=False,
                                timeout=timeout, **kwargs)
    except subprocess.TimeoutExpired as error:
        raise FleetError("%s took more than %d s" % (" ".join(argv), timeout)) from error
    if result.returncode != 0:
        raise FleetError("%s failed (%d): %s" % (" ".join(argv), result.returncode,
                                                 (result.stderr or result.stdout).strip()))
    return result.stdout


def ansible_inventory_bin():
    """ansible-inventory beside this Python (the project venv), else on PATH."""
    beside = os.path.join(os.path.dirname(sys.executable), "ansible-inventory")
    return beside if os.path.exists(beside) else (shutil.which("ansible-inventory") or beside)


def read_inventory(inventory):
    """{host: {"address": 127.0.0.x, "port": its sshd port, "docker": bool,
    "docker_config": (path, options) for an app host}}."""
    data = json.loads(run([ansible_inventory_bin(), "-i", inventory, "--list"]))
    hostvars = data.get("_meta", {}).get("hostvars", {})
    docker_hosts = set(data.get(DOCKER_GROUP, {}).get("hosts", []))
    hosts = {}
    for name, variables in sorted(hostvars.items()):
        address = variables.get("ansible_host", "")
        if not address.startswith("127."):
            raise FleetError("host %s: ansible_host %r is not a loopback address" % (name, address))
        hosts[name] = {"address": address, "port": int(variables.get("ansible_port", 22)),
                       "docker": name in docker_hosts}
        if name in docker_hosts:
            hosts[name]["docker_config"] = docker_config(name, variables)
    if not hosts:
        raise FleetError("inventory %s has no hosts" % inventory)
    return hosts


def docker_config(name, variables):
    """(path, options) of an app host's daemon configuration, as the inventory gives them
    to the docker_engine role, so that the role finds the file the engine started with."""
    path = variables.get("docker_engine_daemon_json_path", "")
    options = variables.get("docker_engine_daemon_options", {})
    if not path.startswith("/") or not isinstance(options, dict):
        raise FleetError("host %s: docker_engine_daemon_json_path and docker_engine_daemon_options"
                         " must be set in the inventory (a path, a mapping)" % name)
    wrong = {key: value for key, value in DOCKERD_REQUIRED.items() if options.get(key) != value}
    if wrong:
        raise FleetError("host %s: docker_engine_daemon_options must set %s (traffic stays on loopback)"
                         % (name, json.dumps(wrong, sort_keys=True)))
    return path, options


def host_dir(name, *parts):
    return os.path.join(STATE_DIR, "hosts", name, *parts)


def read_pid(path):
    try:
        with open(path, encoding="utf-8") as handle:
            return int(handle.read().strip())
    except (OSError, ValueError):
        return None


def write_file(path, text, mode=0o644):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(path, mode)


def pid_alive(pid, marker):
    """True if pid runs and its command line names marker (guards against PID reuse)."""
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as handle:
            return marker.encode() in handle.read()
    except OSError:
        return False


def children(pid):
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid), encoding="utf-8") as handle:
            return [int(child) for child in handle.read().split()]
    except OSError:
        return []


def stop_pid(pid_file, marker, via_children=False):
    """SIGTERM the recorded process (or, with via_children, its children: unshare
    blocks SIGTERM while it waits for the namespace's PID 1), wait a bounded time,
    then SIGKILL; forget the PID."""
    pid = read_pid(pid_file)
    if pid and pid_alive(pid, marker):
        for target in children(pid) if via_children else [pid]:
            os.kill(target, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        while pid_alive(pid, marker) and time.monotonic() < deadline:
            time.sleep(0.2)
        if pid_alive(pid, marker):
            os.kill(pid, signal.SIGKILL)
            time.sleep(0.5)
        if pid_alive(pid, marker):
            raise FleetError("process %d (%s) survived SIGKILL" % (pid, marker))
    if os.path.exists(pid_file):
        os.unlink(pid_file)


def wait_for(check, what, log=None):
    """Poll check() until true; after START_TIMEOUT raise naming what and the log tail."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.3)
    tail = ""
    if log and os.path.exists(log):
        with open(log, encoding="utf-8", errors="replace") as handle:
            tail = "; log %s ends: %s" % (log, handle.read()[-800:].strip())
    raise FleetError("%s did not come up within %.0f s%s" % (what, START_TIMEOUT, tail))


def port_open(address, port):
    try:
        with socket.create_connection((address, port), timeout=1):
            return True
    except OSError:
        return False


# --- keys -------------------------------------------------------------------

def client_key():
    """The fleet's client key pair (Ansible's identity on every host)."""
    key = os.path.join(STATE_DIR, "ssh", "id_ed25519")
    if not os.path.exists(key):
        os.makedirs(os.path.dirname(key), mode=0o700, exist_ok=True)
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "unitehub-fleet", "-f", key])
    return key


def host_key(name):
    """The host's own sshd host key, kept in its state (not in the overlay)."""
    key = host_dir(name, "ssh", "ssh_host_ed25519_key")
    if not os.path.exists(key):
        os.makedirs(os.path.dirname(key), mode=0o700, exist_ok=True)
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", key])
    return key


def write_known_hosts(hosts):
    """One known_hosts for the fleet, so Ansible checks every host key strictly."""
    lines = []
    for name, host in hosts.items():
        with open(host_key(name) + ".pub", encoding="utf-8") as handle:
            kind, blob = handle.read().split()[:2]
        lines.append("%s %s %s\n" % (host["address"], kind, blob))
    write_file(os.path.join(STATE_DIR, "ssh", "known_hosts"), "".join(lines))


# --- dockerd beside the machine's ------------------------------------------------

# Inside the sandbox, the engine's paths are the usual ones; only its data root is a
# real directory of the machine bind-mounted in (overlay2 cannot sit on an overlayfs).
SANDBOX_DOCKERD = {"data": "/var/lib/docker", "exec": "/run/docker", "pidfile": "/run/docker.pid",
                   "socket": "/run/docker.sock"}
DOCKERD_MARKER = "--data-root"  # on the command line of every sandbox dockerd (guards PID reuse)


def start_dockerd(name, host):
    """Run the host's own dockerd inside its namespaces (mount, UTS, PID, root), so its
    bind mounts and files resolve in the host's filesystem, not the machine's."""
    pid_file = host_dir(name, "dockerd.pid")
    marker = DOCKERD_MARKER
    if pid_alive(read_pid(pid_file) or 0, marker):
        return
    init = sandbox_init(name)
    log = host_dir(name, "dockerd.log")
    with open(log, "ab") as handle:
        # nsenter stays as the parent of dockerd (it forks to enter the PID namespace).
        proc = subprocess.Popen(  # pylint: disable=consider-using-with  # outlives us
            ["nsenter", "--target", str(init), "--mount", "--uts", "--pid", "--root",
             "--wd=/", "dockerd", "--config-file", host["docker_config"][0],
             "--data-root", SANDBOX_DOCKERD["data"], "--exec-root", SANDBOX_DOCKERD["exec"],
             "--pidfile", SANDBOX_DOCKERD["pidfile"],
             "--host", "unix://" + SANDBOX_DOCKERD["socket"]],
            stdin=subprocess.DEVNULL, stdout=handle, stderr=handle, start_new_session=True)
    write_file(pid_file, "%d\n" % proc.pid)
    socket_path = "/proc/%d/root%s" % (init, SANDBOX_DOCKERD["socket"])
    wait_for(lambda: os.path.exists(socket_path) or proc.poll() is not None,
             "dockerd of %s" % name, log)
    if proc.poll() is not None:
        os.unlink(pid_file)
        raise FleetError("dockerd of %s exited (%d); see %s" % (name, proc.returncode, log))


def stop_dockerd(name):
    stop_pid(host_dir(name, "dockerd.pid"), DOCKERD_MARKER, via_children=True)


# --- the sandbox --------------------------------------------------------------

SANDBOX_SCRIPT = r"""
set -eu
m="$FLEET_MERGED"
hostname "$FLEET_HOSTNAME"
mount -t overlay overlay -o "lowerdir=/,upperdir=$FLEET_UPPER,workdir=$FLEET_WORK" "$m"
mount -t proc proc "$m/proc"
mount --rbind /sys "$m/sys"
mount --rbind /dev "$m/dev"
mount -t tmpfs -o mode=0755 tmpfs "$m/run"
mount -t tmpfs -o mode=1777 tmpfs "$m/tmp"
mkdir -p "$m/run/sshd" "$m/run/lock"
if [ -n "${FLEET_DOCKER_DATA:-}" ]; then
  mkdir -p "$m/var/lib/docker"
  mount --bind "$FLEET_DOCKER_DATA" "$m/var/lib/docker"
fi
exec chroot "$m" /usr/sbin/sshd -D -e -f /etc/ssh/fleet/sshd_config
"""

SSHD_CONFIG = """\
# Written by tools/fleet.py for fleet host {name}.
ListenAddress {address}:{port}
HostKey /etc/ssh/fleet/ssh_host_ed25519_key
AuthorizedKeysFile /etc/ssh/fleet/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
PidFile none
Subsystem sftp internal-sftp
"""


def prepare_upper(name, host):
    """Seed the host's upper directory: its sshd config, host key, authorized key,
    its hostname and the masked directories. Files written here appear in the sandbox over the machine's /."""
    upper = host_dir(name, "upper")
    for sub in ("work", "merged", "upper"):
        os.makedirs(host_dir(name, sub), mode=0o755, exist_ok=True)
    ssh_dir = os.path.join(upper, "etc", "ssh", "fleet")
    os.makedirs(ssh_dir, mode=0o755, exist_ok=True)
    write_file(os.path.join(ssh_dir, "sshd_config"), SSHD_CONFIG.format(name=name, **host))
    key = host_key(name)
    shutil.copyfile(key, os.path.join(ssh_dir, "ssh_host_ed25519_key"))
    os.chmod(os.path.join(ssh_dir, "ssh_host_ed25519_key"), 0o600)
    with open(client_key() + ".pub", encoding="utf-8") as handle:
        write_file(os.path.join(ssh_dir, "authorized_keys"), handle.read(), 0o600)
    write_file(os.path.join(upper, "etc", "hostname"), name + "\n")
    if host["docker"]:
        shutil.copytree(APP_SOURCE, upper + APP_CONTEXT, dirs_exist_ok=True)
    for masked in MASKED_DIRS:
        # An opaque directory in the upper layer hides the lower one's content.
        path = upper + masked
        os.makedirs(path, mode=0o755, exist_ok=True)
        if os.path.isdir(masked):
            lower = os.stat(masked)
            os.chown(path, lower.st_uid, lower.st_gid)
            os.chmod(path, lower.st_mode & 0o7777)
        os.setxattr(path, "trusted.overlay.opaque", b"y")


def start_sandbox(name, host):
    pid_file = host_dir(name, "sandbox.pid")
    marker = host_dir(name, "merged")
    if pid_alive(read_pid(pid_file) or 0, marker):
        return
    if port_open(host["address"], host["port"]):
        raise FleetError("%s:%d is taken by a process the harness did not record"
                         % (host["address"], host["port"]))
    prepare_upper(name, host)
    env = dict(os.environ, FLEET_HOSTNAME=name, FLEET_MERGED=marker,
               FLEET_UPPER=host_dir(name, "upper"), FLEET_WORK=host_dir(name, "work"))
    if host["docker"]:
        env["FLEET_DOCKER_DATA"] = host_dir(name, "docker-data")
        os.makedirs(env["FLEET_DOCKER_DATA"], mode=0o711, exist_ok=True)
        path, options = host["docker_config"]
        # Written as the docker_engine role writes it (to_nice_json, sorted keys).
        write_file(os.path.join(host_dir(name, "upper"), path.lstrip("/")),
                   json.dumps(options, indent=2, sort_keys=True) + "\n")
    log = host_dir(name, "sandbox.log")
    with open(log, "ab") as handle:
        # unshare stays as the parent of the namespace's PID 1 (sshd); --kill-child
        # makes SIGTERM to unshare end the namespace, and its mounts with it.
        proc = subprocess.Popen(  # pylint: disable=consider-using-with  # outlives us
            ["unshare", "--mount", "--propagation", "private", "--uts", "--pid", "--fork",
             "--kill-child=SIGTERM", "/bin/sh", "-c", SANDBOX_SCRIPT, "fleet-sandbox", marker],
            env=env, stdin=subprocess.DEVNULL, stdout=handle, stderr=handle,
            start_new_session=True)
    write_file(pid_file, "%d\n" % proc.pid)
    wait_for(lambda: port_open(host["address"], host["port"]) or proc.poll() is not None,
             "sshd of %s on %s:%d" % (name, host["address"], host["port"]), log)
    if proc.poll() is not None:
        os.unlink(pid_file)
        raise FleetError("sandbox of %s exited (%d); see %s" % (name, proc.returncode, log))


def sandbox_init(name):
    """The machine's PID of the host's PID 1 (its sshd): unshare's one child."""
    pid = read_pid(host_dir(name, "sandbox.pid"))
    found = children(pid) if pid else []
    if not found:
        raise FleetError("sandbox of %s is not running" % name)
    return found[0]


def stop_sandbox(name):
    stop_pid(host_dir(name, "sandbox.pid"), host_dir(name, "merged"), via_children=True)


# --- up / down -------------------------------------------------------------------

def mounts_under(path):
    """Mount points under path in the machine's mount namespace."""
    prefix = os.path.realpath(path) + "/"
    with open("/proc/self/mountinfo", encoding="utf-8") as handle:
        points = [line.split()[4] for line in handle]
    return [point for point in points if point.startswith(prefix)]


def ensure_sshd():
    """Install openssh-server if sshd is missing, without starting the machine's own
    sshd (it would listen on every address): a policy-rc.d refuses service starts
    for the length of the install, unless the machine already has one."""
    if os.path.exists(SSHD):
        return
    policy = "/usr/sbin/policy-rc.d"
    made_policy = not os.path.exists(policy)
    if made_policy:
        write_file(policy, "#!/bin/sh\nexit 101\n", 0o755)
    try:
        run(["apt-get", "update", "-q"], timeout=300)
        run(["apt-get", "install", "-y", "-q", "--no-install-recommends", "openssh-server"],
            timeout=600, env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
    finally:
        if made_policy:
            os.unlink(policy)


def up(inventory):
    if os.geteuid() != 0:
        raise FleetError("the fleet needs root (namespaces, overlayfs, sshd on port 22)")
    ensure_sshd()
    if not os.path.exists(DOCKERD):
        raise FleetError("%s is missing: the docker_engine role installs it" % DOCKERD)
    hosts = read_inventory(inventory)
    os.makedirs(STATE_DIR, mode=0o755, exist_ok=True)
    client_key()
    write_known_hosts(hosts)
    for name, host in hosts.items():
        start_sandbox(name, host)
        if host["docker"]:
            start_dockerd(name, host)
        print("fleet: %s up on %s%s" % (name, host["address"],
                                        " (own dockerd)" if host["docker"] else ""))


def down(_inventory):
    """Stop every host the state directory records (whatever the inventory says now)."""
    hosts_dir = os.path.join(STATE_DIR, "hosts")
    for name in sorted(os.listdir(hosts_dir)) if os.path.isdir(hosts_dir) else []:
        stop_dockerd(name)
        stop_sandbox(name)
    left = mounts_under(STATE_DIR) if os.path.exists(STATE_DIR) else []
    # None expected: every mount lives in a host's namespace and ends with it.
    for point in sorted(left, reverse=True):  # deepest first
        subprocess.run(["umount", point], check=False, capture_output=True)
    left = mounts_under(STATE_DIR) if os.path.exists(STATE_DIR) else []
    if left:
        raise FleetError("mounts remain under %s, not removing it: %s" % (STATE_DIR, left))
    if os.path.exists(STATE_DIR):
        shutil.rmtree(STATE_DIR)
    print("fleet: down, %s removed" % STATE_DIR)


def engine_socket(name):
    """The machine's path to a running app host's Docker socket."""
    return "/proc/%d/root%s" % (sandbox_init(name), SANDBOX_DOCKERD["socket"])


def load_image(inventory, image, source):
    """Copy image from the engine at the source socket into every app host's engine
    that lacks it (docker save | docker load), instead of building it on each."""
    docker = shutil.which("docker") or "/usr/bin/docker"
    for name, host in read_inventory(inventory).items():
        target = engine_socket(name) if host["docker"] else None
        if target is None or os.path.realpath(target) == os.path.realpath(source):
            continue
        present = subprocess.run([docker, "-H", "unix://" + target, "image", "inspect", image],
                                 capture_output=True, check=False, timeout=60)
        if present.returncode == 0:
            continue
        with subprocess.Popen([docker, "-H", "unix://" + source, "save", image],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) as save:
            run([docker, "-H", "unix://" + target, "load", "-q"], timeout=600, stdin=save.stdout)
            save.stdout.close()
            if save.wait(timeout=60) != 0:
                raise FleetError("docker save %s failed: %s" % (image, save.stderr.read().decode().strip()))
        print("fleet: %s loaded on %s" % (image, name))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("action", choices=("up", "down", "load-image"))
    parser.add_argument("-i", "--inventory", default=DEFAULT_INVENTORY)
    parser.add_argument("--image", help="load-image: the image to copy, name:tag")
    parser.add_argument("--from-host", help="load-image: copy from this fleet host's engine"
                        " (default: the machine's, /var/run/docker.sock)")
    args = parser.parse_args(argv)
    try:
        if args.action == "load-image":
            if not args.image:
                raise FleetError("load-image needs --image")
            source = engine_socket(args.from_host) if args.from_host else "/var/run/docker.sock"
            load_image(args.inventory, args.image, source)
        else:
            (up if args.action == "up" else down)(args.inventory)
    except FleetError as error:
        print("fleet: %s" % error, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
