"""The peers refservers is compared with: how each is installed and configured for a run.

Every peer listens on a loopback port chosen by the harness, with a config file written
under bench/work/ (never the system's): nothing is left running and no system service
is enabled. Debian packages come from apt (under the shared apt lock), httpbin and
gunicorn go into bench/.peer-venv, MailDev into bench/node_modules. ``install()``
returns the peers that could not be installed, with the reason, for the results.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from harness import BENCH, WORK, log

APT_PACKAGES = (
    "postfix",  # smtp-source (load generator) and smtp-sink (the SMTP ceiling)
    "dovecot-imapd",
    "dovecot-pop3d",
    "vsftpd",
    "openssh-server",  # sshd and sftp-server
    "sshpass",  # feeds the OpenSSH sftp client a password, for both servers alike
    "wrk",
    "nginx-light",
    "tinyproxy",
    "haproxy",  # TCP mode: the TCP proxy listeners' peer
    "socat",  # TCP-LISTEN,fork -> TCP: the simplest TCP relay, the other peer
    "inetutils-telnetd",
    "inetutils-inetd",  # starts telnetd per connection (telnetd expects the socket as stdin)
    "curl",
    "openjdk-17-jre-headless",  # WireMock standalone (the stubs peer)
    "inn2",  # innd (+ nnrpd per reader connection): the NNTP peer
)
PEER_VENV = BENCH / ".peer-venv"
NODE_MODULES = BENCH / "node_modules"
WIREMOCK_VERSION = "3.13.2"  # the npm package ships wiremock-standalone-<version>.jar
WIREMOCK_JAR = NODE_MODULES / "wiremock" / "build" / f"wiremock-standalone-{WIREMOCK_VERSION}.jar"
MAILDEV_VERSION = "2.1.0"  # 2.2.x needs a mailsplit release the npm registry no longer has
LOCAL_USER = "refbench"  # the account vsftpd and sshd log in (PAM needs a real user)
LOCAL_PASSWORD = "refbench"


def install() -> dict[str, str]:
    """Install what is missing; return {peer: reason} for what could not be."""
    failures: dict[str, str] = {}
    missing = [p for p in APT_PACKAGES if subprocess.run(["dpkg", "-s", p], capture_output=True).returncode != 0]
    if missing:
        log(f"apt-get install {' '.join(missing)}")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}  # postfix asks questions otherwise
        result = subprocess.run(
            ["flock", "/tmp/apt.lock", "apt-get", "install", "-y", "--no-install-recommends", *missing],
            env=env,
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            failures["apt"] = result.stderr.strip().splitlines()[-1] if result.stderr.strip() else "apt-get failed"
    if not (PEER_VENV / "bin" / "gunicorn").exists():
        log("httpbin + gunicorn into bench/.peer-venv")
        subprocess.run(["python3", "-m", "venv", str(PEER_VENV)], check=True)
        result = subprocess.run(
            [str(PEER_VENV / "bin" / "pip"), "install", "-q", "httpbin", "gunicorn"], capture_output=True, text=True
        )
        if result.returncode != 0:
            failures["httpbin"] = result.stderr.strip().splitlines()[-1]
    if not (NODE_MODULES / "maildev").exists():
        log(f"npm install maildev@{MAILDEV_VERSION} into bench/node_modules")
        result = subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", f"maildev@{MAILDEV_VERSION}"],
            cwd=BENCH,
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            failures["maildev"] = (result.stderr.strip().splitlines() or ["npm install failed"])[-1]
    if not WIREMOCK_JAR.exists():
        log(f"npm install wiremock@{WIREMOCK_VERSION} into bench/node_modules")
        result = subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", f"wiremock@{WIREMOCK_VERSION}"],
            cwd=BENCH,
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            failures["wiremock"] = (result.stderr.strip().splitlines() or ["npm install failed"])[-1]
    finish_inn2(failures)
    ensure_local_user()
    return failures


def finish_inn2(failures: dict[str, str]) -> None:
    """inn2's postinst fails on a host whose name has no domain ("hostname does not
    resolve or domain not set in inn.conf"): set one and finish the configuration."""
    status = subprocess.run(["dpkg-query", "-W", "-f", "${Status}", "inn2"], capture_output=True, text=True).stdout
    if not status or status.endswith(" installed"):
        return
    conf = Path("/etc/news/inn.conf")
    if conf.exists() and "\ndomain:" not in conf.read_text():
        conf.write_text(conf.read_text() + "domain: localdomain\n")
    result = subprocess.run(["flock", "/tmp/apt.lock", "dpkg", "--configure", "inn2"], capture_output=True, text=True)
    if result.returncode != 0:
        failures["inn2"] = (result.stderr.strip().splitlines() or ["dpkg --configure inn2 failed"])[-1]
        return
    # apt-get reported the postinst failure; it is fixed if nothing else is missing now.
    if "apt" in failures and all(_installed(package) for package in APT_PACKAGES):
        del failures["apt"]


def _installed(package: str) -> bool:
    return subprocess.run(["dpkg", "-s", package], capture_output=True).returncode == 0


def ensure_local_user() -> None:
    if subprocess.run(["id", LOCAL_USER], capture_output=True).returncode != 0:
        subprocess.run(["useradd", "--create-home", "--shell", "/bin/bash", LOCAL_USER], check=True)
    subprocess.run(["chpasswd"], input=f"{LOCAL_USER}:{LOCAL_PASSWORD}\n", text=True, check=True)


def local_home() -> Path:
    return Path(os.path.expanduser(f"~{LOCAL_USER}"))


# -- configs -----------------------------------------------------------------------------------


def nginx_config(port: int, root: Path) -> Path:
    directory = WORK / "nginx"
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "nginx.conf"
    config.write_text(
        f"""
worker_processes 1;  # one process, like refservers
daemon off;
pid {directory}/nginx.pid;
error_log {directory}/error.log;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {directory}/body;
    proxy_temp_path {directory}/proxy;
    fastcgi_temp_path {directory}/fastcgi;
    uwsgi_temp_path {directory}/uwsgi;
    scgi_temp_path {directory}/scgi;
    server {{
        listen 127.0.0.1:{port};
        location /static/ {{ alias {root}/; }}
    }}
}}
"""
    )
    return config


def vsftpd_config(port: int) -> Path:
    directory = WORK / "vsftpd"
    directory.mkdir(parents=True, exist_ok=True)
    Path("/var/run/vsftpd/empty").mkdir(parents=True, exist_ok=True)
    config = directory / "vsftpd.conf"
    config.write_text(
        f"""listen=YES
listen_ipv6=NO
listen_address=127.0.0.1
listen_port={port}
background=NO
anonymous_enable=NO
local_enable=YES
write_enable=YES
local_umask=022
pam_service_name=vsftpd
seccomp_sandbox=NO
max_clients=0
max_per_ip=0
pasv_enable=YES
xferlog_enable=NO
secure_chroot_dir=/var/run/vsftpd/empty
"""
    )
    return config


def sshd_config(port: int) -> Path:
    directory = WORK / "sshd"
    directory.mkdir(parents=True, exist_ok=True)
    Path("/run/sshd").mkdir(parents=True, exist_ok=True)  # sshd's privilege separation dir
    key = directory / "host_ed25519"
    if not key.exists():
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    config = directory / "sshd_config"
    config.write_text(
        f"""Port {port}
ListenAddress 127.0.0.1
HostKey {key}
PidFile {directory}/sshd.pid
PasswordAuthentication yes
KbdInteractiveAuthentication no
PubkeyAuthentication no
UsePAM yes
StrictModes no
MaxStartups 200
Subsystem sftp /usr/lib/openssh/sftp-server
"""
    )
    return config


def tinyproxy_config(port: int) -> Path:
    directory = WORK / "tinyproxy"
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "tinyproxy.conf"
    # No ConnectPort line: CONNECT to any port (tinyproxy's default list is 443 and 563).
    config.write_text(
        f"""User nobody
Group nogroup
Port {port}
Listen 127.0.0.1
Timeout 60
LogLevel Critical
MaxClients 200
Allow 127.0.0.1
DisableViaHeader No
"""
    )
    return config


def haproxy_config(port: int, upstream_port: int) -> Path:
    """HAProxy in TCP mode: one frontend on ``port`` relaying to 127.0.0.1:upstream_port."""
    directory = WORK / "haproxy"
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "haproxy.cfg"
    config.write_text(
        f"""global
    maxconn 1000
defaults
    mode tcp
    timeout connect 5s
    timeout client 60s
    timeout server 60s
frontend relay
    bind 127.0.0.1:{port}
    default_backend upstream
backend upstream
    server nginx 127.0.0.1:{upstream_port}
"""
    )
    return config


def socat_command(port: int, upstream_port: int) -> list[str]:
    """socat forking one child per connection, as it is used as a TCP relay."""
    return ["socat", f"TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork", f"TCP:127.0.0.1:{upstream_port}"]


def dovecot_config(directory: Path, imap_port: int, pop3_port: int, maildir: Path) -> Path:
    """Dovecot serving IMAP and POP3 on loopback from ``maildir``, everything under ``directory``.

    One user, ``demo``/``demo`` like refservers' default, from a passwd-file; its mail
    processes run as LOCAL_USER (Dovecot refuses to access mail as root), so the
    directory must be traversable and the Maildir owned by that account. No TLS: both
    servers are measured in plain text.
    """
    account = subprocess.run(["id", "-u", LOCAL_USER], capture_output=True, text=True, check=True).stdout.strip()
    group = subprocess.run(["id", "-g", LOCAL_USER], capture_output=True, text=True, check=True).stdout.strip()
    users = directory / "users"
    users.write_text(f"demo:{{PLAIN}}demo:{account}:{group}::{directory}/home\n")
    config = directory / "dovecot.conf"
    config.write_text(
        f"""protocols = imap pop3
listen = 127.0.0.1
base_dir = {directory}/run
state_dir = {directory}/state
log_path = {directory}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:{maildir}
first_valid_uid = 1
pop3_uidl_format = %08Xu%08Xv
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {users}
}}
userdb {{
  driver = passwd-file
  args = {users}
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap_port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    address = 127.0.0.1
    port = {pop3_port}
  }}
  inet_listener pop3s {{
    port = 0
  }}
}}
"""
    )
    return config


def inetd_config(port: int) -> Path:
    """inetutils-inetd starting ``telnetd -h`` (no host banner) per connection on loopback.

    telnetd runs /bin/login, so LOCAL_USER logs in through PAM with its password and
    gets bash, as on any Debian box with telnetd installed.
    """
    directory = WORK / "inetd"
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "inetd.conf"
    config.write_text(f"127.0.0.1:{port} stream tcp nowait root /usr/sbin/telnetd telnetd -h\n")
    return config


INN_BIN = Path("/usr/lib/news/bin")
INN_PATHS = (
    "db",
    "run",
    "spool/articles",
    "spool/overview",
    "spool/incoming/tmp",
    "spool/outgoing",
    "spool/archive",
    "log",
    "http",
)


def inn_config(directory: Path, port: int, groups: tuple[str, ...]) -> Path:
    """A private INN 2 instance under ``directory`` (config copied from /etc/news, every
    path and the port overridden, ``groups`` created with posting allowed); return its
    inn.conf, which innd and nnrpd read through INNCONF. The system's INN is untouched."""
    etc = directory / "etc"
    shutil.copytree("/etc/news", etc, dirs_exist_ok=True)
    for sub in INN_PATHS:
        (directory / sub).mkdir(parents=True, exist_ok=True)
    overrides = {
        "port": str(port),
        "nnrpdpostport": str(port),
        "bindaddress": "127.0.0.1",
        "pathhost": "inn.bench",
        "domain": "localdomain",
        "pathetc": str(etc),
        "pathdb": str(directory / "db"),
        "pathrun": str(directory / "run"),
        "pathlog": str(directory / "log"),
        "pathhttp": str(directory / "http"),
        "pathspool": str(directory / "spool"),
        "patharticles": str(directory / "spool/articles"),
        "pathoverview": str(directory / "spool/overview"),
        "pathincoming": str(directory / "spool/incoming"),
        "pathtmp": str(directory / "spool/incoming/tmp"),
        "pathoutgoing": str(directory / "spool/outgoing"),
        "patharchive": str(directory / "spool/archive"),
    }
    kept = [
        line
        for line in (etc / "inn.conf").read_text().splitlines()
        if line.lstrip("#").split(":", 1)[0].strip() not in overrides
    ]
    config = etc / "inn.conf"
    config.write_text("\n".join(kept + [f"{key}: {value}" for key, value in overrides.items()]) + "\n")
    active = [
        "control 0000000000 0000000001 n",
        "control.cancel 0000000000 0000000001 n",
        "junk 0000000000 0000000001 n",
    ]
    (directory / "db" / "active").write_text(
        "\n".join(active + [f"{g} 0000000000 0000000001 y" for g in groups]) + "\n"
    )
    (directory / "db" / "active.times").write_text("")
    (directory / "db" / "newsgroups").write_text("".join(f"{g}\tbench group\n" for g in groups))
    (directory / "db" / "history").write_text("")
    subprocess.run(["chown", "-R", "news:news", str(directory)], check=True)
    subprocess.run(
        ["su", "news", "-s", "/bin/sh", "-c", f"{INN_BIN}/makedbz -i -o"],
        cwd=directory / "db",
        env={**os.environ, "INNCONF": str(config)},
        check=True,
        capture_output=True,
        timeout=60,
    )
    return config


def have(binary: str) -> bool:
    return shutil.which(binary) is not None or Path(binary).exists()
