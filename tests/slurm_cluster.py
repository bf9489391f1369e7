"""A real, throwaway one-node SLURM cluster for tests (Debian's slurm-wlm + munge).

Everything the cluster needs lives in one private directory: its own munge key and munged (on
its own socket), a slurm.conf + gres.conf (found by every SLURM tool through ``SLURM_CONF``),
state, spool, logs, free TCP ports and an ``srun`` shim (see ``write_config``). So it neither
needs nor touches /etc/slurm, the system's munged or another cluster on the same machine. The daemons run in the foreground as
children of this process; ``stop()`` ends exactly those PIDs.

The node is declared as a GPU server whatever this machine has (``SlurmdParameters=
config_overrides``; default 32 CPUs, 250 GB, ``gpu:a100:1`` backed by /dev/null), so that a
profile sized for real A100 nodes is accepted unchanged on a 2-core CI machine. Jobs that ask
for a GPU get one (``CUDA_VISIBLE_DEVICES=0``); ``gpus=2`` lets two GPU jobs run at once.

    cluster = SlurmCluster(tmpdir)
    cluster.start()                       # a few seconds
    subprocess.run(["sbatch", ...], env=cluster.env)
    cluster.jobs()                        # every job the controller knows, as dicts
    cluster.stop()

Standalone: ``python tests/slurm_cluster.py [DIR]`` starts one and waits for Ctrl-C (prints the
``export SLURM_CONF=...`` line to use it from another shell).
"""

from __future__ import annotations

import atexit
import fcntl
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REQUIRED = ("sinfo", "sbatch", "squeue", "scontrol", "srun", "slurmctld", "slurmd", "munged",
            "munge")
APT_PACKAGES = ("slurm-wlm", "slurmctld", "slurmd", "slurm-client", "munge")
FAKE_GPU_FILES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/urandom")


class SlurmUnavailable(RuntimeError):
    """SLURM cannot be installed or started here (the reason is the message)."""


def _which(name: str) -> str | None:
    # the daemons live in /usr/sbin, which is not on every user's PATH
    path = os.environ.get("PATH", "") + os.pathsep + "/usr/sbin" + os.pathsep + "/sbin"
    return shutil.which(name, path=path)


def missing_tools() -> list[str]:
    return [t for t in REQUIRED if _which(t) is None]


def ensure_installed(*, allow_install: bool = True, timeout: float = 600) -> None:
    """Install slurm-wlm and munge from Debian's packages if any SLURM tool is missing.

    Raises SlurmUnavailable with the reason when that is impossible (not root, no apt-get,
    install failure). One process at a time (`make test`'s two workers may both start a cluster):
    the second finds the tools the first installed."""
    if not missing_tools():
        return
    with open(Path(tempfile.gettempdir()) / "anonbench-slurm-install.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        _install(allow_install, timeout)


def _install(allow_install: bool, timeout: float) -> None:
    missing = missing_tools()
    if not missing:
        return
    if not allow_install:
        raise SlurmUnavailable(f"SLURM tools missing: {' '.join(missing)}")
    if os.geteuid() != 0:
        raise SlurmUnavailable(f"SLURM tools missing ({' '.join(missing)}) and not root: "
                               "cannot apt-get install " + " ".join(APT_PACKAGES))
    if shutil.which("apt-get") is None:
        raise SlurmUnavailable(f"SLURM tools missing ({' '.join(missing)}) and no apt-get")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    cmds = [["apt-get", "update", "-q"],
            ["apt-get", "install", "-y", "-q", "-o", "DPkg::Lock::Timeout=300",
             "--no-install-recommends", *APT_PACKAGES]]
    for cmd in cmds:
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise SlurmUnavailable(f"{' '.join(cmd)}: timed out after {timeout} s") from None
        if p.returncode != 0:
            raise SlurmUnavailable(f"{' '.join(cmd)} failed ({p.returncode}):\n"
                                   f"{(p.stdout + p.stderr)[-3000:]}")
    missing = missing_tools()
    if missing:
        raise SlurmUnavailable(f"still missing after apt-get install: {' '.join(missing)}")


def short_hostname() -> str:
    return subprocess.run(["hostname", "-s"], capture_output=True, text=True,
                          check=True).stdout.strip()


def _free_ports(n: int) -> list[int]:
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


def parse_scontrol_record(line: str) -> dict[str, str]:
    """One line of ``scontrol show job -o`` as {key: value} (values may contain spaces)."""
    keys = list(re.finditer(r"(?:^|\s)([A-Za-z][\w/:]*)=", line))
    rec = {}
    for k, nxt in zip(keys, keys[1:] + [None]):
        end = nxt.start() if nxt is not None else len(line)
        rec[k.group(1)] = line[k.end():end].strip()
    return rec


class SlurmCluster:
    """A one-node cluster with a CPU partition ``main`` (default) and a ``gpu`` partition."""

    def __init__(self, root: str | os.PathLike, *, cpus: int = 32, memory_mb: int = 256000,
                 gpu_type: str = "a100", gpus: int = 1, min_job_age: int = 3600,
                 hostname: str | None = None):
        if not 1 <= gpus <= len(FAKE_GPU_FILES):
            raise ValueError(f"gpus: 1 to {len(FAKE_GPU_FILES)}")
        self.root = Path(root).resolve()
        self.cpus, self.memory_mb, self.gpu_type, self.gpus = cpus, memory_mb, gpu_type, gpus
        self.min_job_age = min_job_age
        self.hostname = hostname or short_hostname()
        self.conf = self.root / "etc" / "slurm.conf"
        self.gres_conf = self.root / "etc" / "gres.conf"
        self.log_dir = self.root / "log"
        self.munge_socket = self.root / "run" / "munge.socket"
        self.jobcomp = self.log_dir / "jobcomp.txt"
        self.procs: dict[str, subprocess.Popen] = {}

    # -- set-up -------------------------------------------------------------------------------
    @property
    def bin_dir(self) -> Path:
        return self.root / "bin"

    @property
    def env(self) -> dict[str, str]:
        """os.environ plus SLURM_CONF, and on PATH: the srun shim first, /usr/sbin last. Give
        this to every SLURM call (and to Snakemake)."""
        path = [str(self.bin_dir)] + os.environ.get("PATH", "").split(os.pathsep)
        if "/usr/sbin" not in path:
            path.append("/usr/sbin")
        return {**os.environ, "SLURM_CONF": str(self.conf), "PATH": os.pathsep.join(path)}

    def write_config(self) -> None:
        r = self.root
        # munged insists that everybody may traverse its socket's parent directories
        r.mkdir(parents=True, exist_ok=True)
        os.chmod(r, 0o711)
        for d in ("etc", "run", "state", "spool", "log"):
            (r / d).mkdir(exist_ok=True)
            os.chmod(r / d, 0o755)
        key = r / "etc" / "munge.key"
        if not key.exists():
            key.write_bytes(os.urandom(1024))
        os.chmod(key, 0o600)
        ctld_port, slurmd_port = _free_ports(2)
        h = self.hostname
        gres = f"gpu:{self.gpu_type}:{self.gpus}" if self.gpu_type else f"gpu:{self.gpus}"
        self.conf.write_text(f"""\
# one-node test cluster written by tests/slurm_cluster.py
ClusterName=anonbench
SlurmctldHost={h}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={self.munge_socket}
SlurmUser=root
SlurmdUser=root
StateSaveLocation={r}/state
SlurmdSpoolDir={r}/spool
SlurmctldPidFile={r}/run/slurmctld.pid
SlurmdPidFile={r}/run/slurmd.pid
SlurmctldLogFile={self.log_dir}/slurmctld.log
SlurmdLogFile={self.log_dir}/slurmd.log
MailProg=/bin/true
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerParameters=sched_interval=2
# without it one job gets all of the node's memory
DefMemPerCPU=500
ReturnToService=2
# finished jobs stay visible to squeue/scontrol this long (the plugin's squeue status check)
MinJobAge={self.min_job_age}
GresTypes=gpu
# no slurmdbd: sacct does not work (use --slurm-status-command squeue)
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc={self.jobcomp}
# the node below is an A100 box whatever this machine has
SlurmdParameters=config_overrides
NodeName={h} NodeAddr=127.0.0.1 CPUs={self.cpus} RealMemory={self.memory_mb} Gres={gres} State=UNKNOWN
PartitionName=main Nodes={h} Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes={h} MaxTime=INFINITE State=UP
""")
        # The slurm plugin's job step (snakemake-executor-plugin-slurm-jobstep 0.6) removes
        # every SLURM_* variable but the job's ids before it calls `srun`, SLURM_CONF included,
        # and srun would then look for /etc/slurm/slurm.conf. Rather than writing there, the
        # jobs find this shim first on their PATH (sbatch --export=ALL passes PATH on).
        self.bin_dir.mkdir(exist_ok=True)
        shim = self.bin_dir / "srun"
        shim.write_text(f"#!/bin/sh\nSLURM_CONF={self.conf} exec {_which('srun')} \"$@\"\n")
        os.chmod(self.bin_dir, 0o755)
        os.chmod(shim, 0o755)
        type_ = f" Type={self.gpu_type}" if self.gpu_type else ""
        # one device file per fake GPU (SLURM wants them distinct)
        files = ",".join(FAKE_GPU_FILES[:self.gpus])
        self.gres_conf.write_text(f"AutoDetect=off\nNodeName={h} Name=gpu{type_} File={files}\n")

    def _spawn(self, name: str, cmd: list[str]) -> None:
        out = open(self.log_dir / f"{name}.out", "ab")
        self.procs[name] = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, env=self.env,
                                            cwd=self.root, start_new_session=True)
        out.close()

    def _check_alive(self) -> None:
        for name, p in self.procs.items():
            if p.poll() is not None:
                raise SlurmUnavailable(f"{name} exited ({p.returncode}) at start:\n"
                                       + self.tail_logs())

    def start(self, timeout: float = 60) -> "SlurmCluster":
        ensure_installed(allow_install=False)
        self.write_config()
        atexit.register(self.stop)  # should the caller never get to stop()
        try:
            r = self.root
            self._spawn("munged", [_which("munged"), "--foreground",
                                   f"--socket={self.munge_socket}",
                                   f"--key-file={r}/etc/munge.key",
                                   f"--pid-file={r}/run/munged.pid",
                                   f"--seed-file={r}/run/munged.seed",
                                   f"--log-file={self.log_dir}/munged.log"])
            self._wait(lambda: self._munge_ok(), 15, "munged")
            self._spawn("slurmctld", [_which("slurmctld"), "-D", "-f", str(self.conf)])
            self._spawn("slurmd", [_which("slurmd"), "-D", "-f", str(self.conf),
                                   "-N", self.hostname])
            self._wait(self._node_idle, timeout, "the node to be idle")
        except BaseException:
            self.stop()
            raise
        return self

    def _munge_ok(self) -> bool:
        p = subprocess.run(f"munge -S {self.munge_socket} -n | unmunge -S {self.munge_socket}",
                           shell=True, capture_output=True, text=True)
        return p.returncode == 0

    def _node_idle(self) -> bool:
        try:
            p = subprocess.run(["timeout", "2", "sinfo", "-h", "-N", "-o", "%t"],
                               capture_output=True, text=True, env=self.env, timeout=5)
        except subprocess.TimeoutExpired:
            return False
        states = p.stdout.split()
        return p.returncode == 0 and bool(states) and all(s == "idle" for s in states)

    def _wait(self, ok, timeout: float, what: str) -> None:
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            self._check_alive()
            if ok():
                return
            time.sleep(0.3)
        raise SlurmUnavailable(f"timed out after {timeout} s waiting for {what}:\n"
                               + self.tail_logs())

    def tail_logs(self, n: int = 4000) -> str:
        out = []
        for f in sorted(self.log_dir.glob("*")):
            if f.is_file() and f.name != "jobcomp.txt":
                out.append(f"--- {f}\n{f.read_text(errors='replace')[-n:]}")
        return "\n".join(out)

    # -- tear-down ----------------------------------------------------------------------------
    def stop(self, timeout: float = 15) -> None:
        """End the daemons this object started (slurmd, slurmctld, munged), by PID; first
        cancel the jobs still queued or running on this cluster (a test that failed midway),
        so that no job step outlives it."""
        ctld = self.procs.get("slurmctld")
        if ctld is not None and ctld.poll() is None:
            try:
                subprocess.run(["scancel", "--user", str(os.getuid()), "--full"],
                               capture_output=True, env=self.env, timeout=10)
                if self.jobs_active():
                    time.sleep(2)
            except (subprocess.TimeoutExpired, OSError, RuntimeError):
                pass
        for name in ("slurmd", "slurmctld", "munged"):
            p = self.procs.get(name)
            if p is None or p.poll() is not None:
                continue
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        self.procs.clear()

    def __enter__(self) -> "SlurmCluster":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def pids(self) -> dict[str, int]:
        return {name: p.pid for name, p in self.procs.items()}

    # -- queries ------------------------------------------------------------------------------
    def run(self, *cmd: str, check: bool = True, timeout: float = 30) -> str:
        p = subprocess.run(list(cmd), capture_output=True, text=True, env=self.env,
                           timeout=timeout)
        if check and p.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}): {p.stderr}")
        return p.stdout

    def jobs_active(self) -> bool:
        """Whether any job is still pending, running or completing."""
        out = self.run("squeue", "-h", "-t", "PENDING,RUNNING,COMPLETING", "-o", "%i",
                       check=False, timeout=10)
        return bool(out.strip())

    def jobs(self) -> list[dict[str, str]]:
        """Every job the controller still knows (finished ones for MinJobAge seconds), oldest
        first: JobId, JobName, JobState, Partition, Comment, TRES (cpu/mem), TresPerJob
        (``gres:gpu:1`` for a GPU request), ExitCode, ..."""
        out = self.run("scontrol", "show", "job", "-o")
        recs = [parse_scontrol_record(line) for line in out.splitlines()
                if line.startswith("JobId=")]
        return sorted(recs, key=lambda r: int(r["JobId"]))

    def jobcomp_records(self) -> list[dict[str, str]]:
        """The job completion log (jobcomp/filetxt): one record per finished job."""
        if not self.jobcomp.exists():
            return []
        return [parse_scontrol_record(line) for line in self.jobcomp.read_text().splitlines()
                if line.startswith("JobId=")]


def main(argv: list[str]) -> int:
    import tempfile

    root = Path(argv[1]) if len(argv) > 1 else Path(tempfile.mkdtemp(prefix="slurm-"))
    ensure_installed()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # kill PID: stop the daemons too
    cluster = SlurmCluster(root).start()
    print(f"cluster up (pids {cluster.pids}); in another shell:\n"
          f"  export SLURM_CONF={cluster.conf}\nCtrl-C stops it.", flush=True)
    try:
        while all(p.poll() is None for p in cluster.procs.values()):
            time.sleep(1)
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
