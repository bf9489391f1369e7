"""The SLURM profile (profiles/slurm): dry runs, then a real one-node SLURM cluster.

The cluster is Debian's slurm-wlm + munge, installed with apt-get when missing and started in a
private directory (tests/slurm_cluster.py). No SLURM (not root, no apt-get, no start): the
cluster tests are skipped, except under CI=true, where that is a failure.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from conftest import (REPO, from_scratch, job_counts, load_config, snakemake, street_only,
                      write_config)

PROFILE = REPO / "profiles" / "slurm"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
SITE_VARS = ("ANONBENCH_SLURM_ACCOUNT", "ANONBENCH_SLURM_PARTITION",
             "ANONBENCH_SLURM_GPU_PARTITION", "ANONBENCH_SLURM_GPU_MODEL",
             "ANONBENCH_SLURM_ANNOTATE_PARTITION")
GPU_RULES = {"train", "evaluate"}          # always a GPU, on the GPU partition
ANNOTATE = {"faces", "keypoints", "anonymize_realistic"}  # a GPU only for GPU models (gpu=1)
GROUP = "shardwork"                        # the profile's group of the per-shard CPU jobs
CHECKS = "checks"                          # and of the per-shard image checks
GROUPED = {"anonymize", "audit_shard", "check_images"}
GROUP_COMPONENTS = 16                      # the profile's group-components
ANONYMIZE_MEM_MB = 2000                    # the profile's anonymize: mem_mb = 2000 * attempt


def unavailable(reason):
    """Skip, or under CI fail: CI must run the SLURM tests."""
    if IN_CI:
        pytest.fail(f"CI=true but {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module", autouse=True)
def slurm_plugin():
    try:
        import snakemake_executor_plugin_slurm  # noqa: F401
    except ImportError:
        unavailable("snakemake-executor-plugin-slurm is not installed")


# The plugin polls SLURM with a growing pause (its initial pause, then +10 s after every poll that
# sees no job finish, up to 180 s): right for a real cluster, but on this one it would add about
# 10 s to every level of the DAG. For the tests only, Snakemake's main process polls every
# second (RemoteExecutor.sleep is the pause between polls); submission, status checks and job
# execution are the plugin's own. The jobs inside SLURM start Snakemake without this.
FAST_POLL = """
import asyncio, sys
try:
    from snakemake_interface_executor_plugins.executors.remote import RemoteExecutor
    async def _poll_pause(self):
        await asyncio.sleep(1)
    RemoteExecutor.sleep = _poll_pause
except (ImportError, AttributeError):
    pass
from snakemake.cli import main
sys.argv[0] = "snakemake"
main()
"""


def profile_snakemake(workdir, *args, configfile, env=None, timeout=540, check=True,
                      fast_poll=False):
    """The repo's workflow through profiles/slurm, run from ``workdir`` (the plugin puts its
    SLURM logs under the directory Snakemake starts in)."""
    base = {k: v for k, v in os.environ.items() if k not in SITE_VARS}
    env = {**base, **(env or {}), "PYTHONPATH": str(REPO / "src")}
    start = ["-c", FAST_POLL] if fast_poll else ["-m", "snakemake"]
    cmd = [sys.executable, *start, "-s", str(REPO / "Snakefile"), "-d", str(workdir),
           "--profile", str(PROFILE), "--configfile", str(configfile),
           "--replace-workflow-config", *args]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env,
                       cwd=workdir)
    if check and p.returncode != 0:
        raise AssertionError(f"snakemake failed ({p.returncode}):\n{p.stdout[-6000:]}\n"
                             f"{p.stderr[-8000:]}")
    return p


def dry_run_jobs(output):
    """[(rule, {resource: value}, in_group)] of every job a dry run lists."""
    jobs, rule, indent = [], None, 0
    for line in output.splitlines():
        m = re.match(r"^(\s*)(?:local)?rule (\S+):$", line)
        if m:
            indent, rule = len(m.group(1)), m.group(2)
            continue
        m = re.match(r"^\s*resources: (.*)$", line)
        if m and rule is not None:
            res = dict(kv.split("=", 1) for kv in m.group(1).split(", "))
            jobs.append((rule, res, indent > 0))
            rule = None
    return jobs


def tiny(config):
    """config.yaml at test size: the street world, 8 + 4 images, 1 shard, 3 variants, 1 seed,
    2 iterations, the model from scratch (no pretrain world: these tests are about SLURM)."""
    config = street_only(from_scratch(config))
    config["datasets"]["demo"]["generate"].update({"train_images": 8, "val_images": 4})
    config["datasets"]["demo"]["shards"] = 1
    keep = ["original", "face-blur", "body-maskout"]
    config["variants"] = {k: v for k, v in config["variants"].items() if k in keep}
    config["tables"]["table1"]["variants"] = keep
    config["figures"] = {}
    config["targets"] = {}  # the config's targets name its figures
    config["seeds"] = [0]
    config["models"]["maskrcnn-demo"].update({"iterations": 2, "batch_size": 2})
    return config


# --- the profile, dry runs (no SLURM needed) ------------------------------------------------

def test_profile_sizes_and_site_overrides(demo_config, tmp_path):
    assert "body-realistic" in demo_config["tables"]["table1"]["variants"]  # anonymize_realistic
    cfg = write_config(tmp_path / "c.yaml", demo_config)
    plain = dry_run_jobs(profile_snakemake(tmp_path, "-n", configfile=cfg).stdout)
    site = {"ANONBENCH_SLURM_ACCOUNT": "proj42", "ANONBENCH_SLURM_PARTITION": "cpu-short",
            "ANONBENCH_SLURM_GPU_PARTITION": "a100q", "ANONBENCH_SLURM_GPU_MODEL": "a100",
            "ANONBENCH_SLURM_ANNOTATE_PARTITION": "annot"}
    overridden = dry_run_jobs(profile_snakemake(tmp_path, "-n", configfile=cfg,
                                                env=site).stdout)
    rules = {r for r, _, _ in plain}
    assert GPU_RULES | GROUPED | {"faces", "anonymize_realistic", "prepare", "table"} <= rules, rules
    for rule, res, in_group in plain:
        assert in_group == (rule in GROUPED), rule
        assert "slurm_account" not in res
        if rule in GPU_RULES:
            assert res["gpu"] == "1" and res["slurm_partition"] == "gpu", (rule, res)
            assert "gpu_model" not in res and int(res["cpus_per_task"]) >= 8
        elif rule in ANNOTATE:  # the GPU partition; the demo's face boxes need no GPU
            assert res["slurm_partition"] == "gpu" and res["gpu"] == "0", (rule, res)
        else:  # the cluster's default partition, no GPU
            assert int(res.get("gpu", 0)) == 0, (rule, res)
            assert "slurm_partition" not in res and "gpu_model" not in res, (rule, res)
    train = next(res for r, res, _ in plain if r == "train")
    # the demo dataset is not COCO: 12 h on the first attempt
    assert (train["mem_mb"], train["runtime"]) == ("64000", "720")
    anonymize = next(res for r, res, _ in plain if r == "anonymize")
    assert (anonymize["mem_mb"], anonymize["runtime"]) == (str(ANONYMIZE_MEM_MB), "60")
    for rule, res, _ in overridden:
        assert res["slurm_account"] == "proj42"
        if rule in GPU_RULES:
            assert (res["slurm_partition"], res["gpu_model"]) == ("a100q", "a100")
        elif rule in ANNOTATE:
            assert res["slurm_partition"] == "annot" and "gpu_model" not in res
        else:
            assert res["slurm_partition"] == "cpu-short" and "gpu_model" not in res
    # what an override on the command line would do instead: replace the whole section
    p = profile_snakemake(tmp_path, "-n", "--set-resources", "train:slurm_partition=x",
                          configfile=cfg)
    train = next(res for r, res, _ in dry_run_jobs(p.stdout) if r == "train")
    assert "gpu" not in train and train["mem_mb"] != "64000"


def slurm_job_count(output):
    """(SLURM jobs with the profile's grouping, SLURM jobs without, group jobs) of a dry run."""
    counts = job_counts(output)
    rule_jobs = sum(n for r, n in counts.items() if r != "all")  # `all` runs locally
    groups = len(re.findall(rf"Group job ({GROUP}|{CHECKS}) ", output))
    grouped = sum(counts.get(r, 0) for r in GROUPED)
    return rule_jobs - grouped + groups, rule_jobs, groups


def test_paper_matrix_job_count_with_grouping(paper_config, tmp_path):
    from test_workflow_dag import fake_paper_roots

    fake_paper_roots(paper_config, tmp_path)
    cfg = write_config(tmp_path / "paper.yaml", paper_config)
    p = profile_snakemake(tmp_path, "-n", configfile=cfg)
    with_groups, without, groups = slurm_job_count(p.stdout)
    counts = job_counts(p.stdout)
    # one anonymize job per shard of each dataset x anonymizing variant its tables ask for
    rows: dict[str, set[str]] = {}
    for t in paper_config["tables"].values():
        rows.setdefault(t["dataset"], set()).update(
            v for v in t["variants"] if paper_config["variants"][v]["method"] != "none")
    expected = sum(paper_config["datasets"][d]["shards"] * len(v) for d, v in rows.items())
    assert counts["anonymize"] + counts["anonymize_realistic"] == expected == counts["audit_shard"]
    # the GPU face detector (dsfd) of Cityscapes/BDD100K: faces jobs with a GPU, on the GPU
    # partition, not grouped
    faces = [res for r, res, _ in dry_run_jobs(p.stdout) if r == "faces"]
    assert {res["gpu"] for res in faces} == {"0", "1"}
    assert {res["slurm_partition"] for res in faces} == {"gpu"}
    # the realistic variants' anonymize jobs (DeepPrivacy2 on a GPU) are not grouped
    realistic = [res for r, res, in_group in dry_run_jobs(p.stdout) if r == "anonymize_realistic"]
    assert realistic and {res["gpu"] for res in realistic} == {"1"}
    assert {res["slurm_partition"] for res in realistic} == {"gpu"}
    # a connected component of the group: one audit_shard job, with its anonymize job unless
    # that is an anonymize_realistic one; or one check_images job (packed among themselves)
    assert groups == (-(-counts["audit_shard"] // GROUP_COMPONENTS)
                      + -(-counts["check_images"] // GROUP_COMPONENTS))
    assert with_groups == (without - counts["anonymize"] - counts["audit_shard"]
                           - counts["check_images"] + groups)
    # the numbers docs/slurm.md states are this dry run's
    doc = (REPO / "docs" / "slurm.md").read_text()
    stated = re.search(r"paper matrix[^\n]*?: (\d+) jobs?[^\n]*?(\d+) SLURM jobs", doc, re.I)
    assert stated, "docs/slurm.md: no 'paper matrix ...: N jobs ... M SLURM jobs' line"
    assert (int(stated.group(1)), int(stated.group(2))) == (without, with_groups), \
        (without, with_groups)


# --- a real SLURM cluster ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def slurm_cluster():
    from slurm_cluster import SlurmCluster, SlurmUnavailable, ensure_installed

    try:
        ensure_installed()
    except SlurmUnavailable as e:
        unavailable(f"SLURM not available: {e}")
    # munged needs every parent of its socket to be world-traversable: not pytest's tmp dirs
    root = Path(tempfile.mkdtemp(prefix="anonbench-slurm-"))
    cluster = SlurmCluster(root, gpus=2)
    try:
        cluster.start()
    except SlurmUnavailable as e:
        shutil.rmtree(root, ignore_errors=True)
        unavailable(f"SLURM did not start: {e}")
    yield cluster
    cluster.stop()
    shutil.rmtree(root, ignore_errors=True)


def minutes(limit):
    """SLURM's [D-]HH:MM:SS as minutes."""
    days, _, hms = limit.rpartition("-")
    h, m, sec = (int(x) for x in hms.split(":"))
    return int(days or 0) * 1440 + h * 60 + m + sec / 60


def rule_of(comment):
    """The rule (or "group:<group>") of a SLURM job, from the plugin's --comment:
    rule_<rule>_wildcards_<values> or, for a group job, rule_<group>_<its rules>."""
    for group in (GROUP, CHECKS):
        if comment.startswith(f"rule_{group}_"):
            return f"group:{group}"
    m = re.match(r"rule_(\w+?)(?:_wildcards_.*)?$", comment)
    return m.group(1) if m else comment


def tally(jobs, state=None):
    out = {}
    for j in jobs:
        if state is None or j["JobState"] == state:
            out[rule_of(j["Comment"])] = out.get(rule_of(j["Comment"]), 0) + 1
    return out


def as_slurm_jobs(counts):
    """{rule: jobs} of a dry run -> {rule or group: SLURM jobs} under the profile's grouping
    (all group members ready at once: a group job per GROUP_COMPONENTS anonymize jobs, and
    one per GROUP_COMPONENTS image checks)."""
    out = {r: n for r, n in counts.items() if r not in GROUPED | {"all"}}
    if counts.get("anonymize"):
        out[f"group:{GROUP}"] = -(-counts["anonymize"] // GROUP_COMPONENTS)
    if counts.get("check_images"):
        out[f"group:{CHECKS}"] = -(-counts["check_images"] // GROUP_COMPONENTS)
    return out


@pytest.fixture(scope="module")
def slurm_run(slurm_cluster, tmp_path_factory):
    """The tiny study through SLURM in three runs: (1) the demo world; then one train image is
    corrupted; (2) a run that must fail in the checks' group job (the shard's decode check),
    while the jobs that do not need the image (prepare, shards, the val check) succeed and no
    faces or anonymize job starts; the image is repaired; (3) the rest of the study."""
    work = tmp_path_factory.mktemp("slurm_study")
    cfg = write_config(work / "tiny.yaml", tiny(load_config()))
    # the test cluster's partitions (tests/slurm_cluster.py): main (CPU, default) and gpu
    env = {**slurm_cluster.env, "ANONBENCH_SLURM_PARTITION": "main",
           "ANONBENCH_SLURM_GPU_PARTITION": "gpu", "ANONBENCH_SLURM_GPU_MODEL": "a100"}
    # squeue: this cluster has no slurmdbd, sacct would hang the plugin
    fast = ["--slurm-status-command", "squeue", "--slurm-init-seconds-before-status-checks", "1"]

    def run(*args, check=True):
        t0 = time.monotonic()
        p = profile_snakemake(work, *fast, *args, configfile=cfg, env=env, check=check,
                              fast_poll=True)
        return p, time.monotonic() - t0

    full = job_counts(profile_snakemake(work, "-n", configfile=cfg, env=env).stdout)
    t0 = time.monotonic()
    first, first_s = run("results/demo/world")
    n_first = len(slurm_cluster.jobs())

    images = sorted((work / "results/demo/world/train2017").iterdir())
    bad = images[0]
    good_bytes, st = bad.read_bytes(), bad.stat()
    # truncated, with the JPEG end marker appended: prepare's header check passes it, the full
    # decode of the shard (check_images, in the group job) does not
    bad.write_bytes(good_bytes[: len(good_bytes) // 2] + b"\xff\xd9")
    targets = ["results/demo/anonymized/face-blur/train.json",
               "results/demo/anonymized/body-maskout/train.json",
               "results/demo/anonymized/original/train.json", "results/demo/prepared/val.json"]
    # one retry, not the profile's two: the test's time (one more attempt would add ~12 s)
    failed, failed_s = run("--retries", "1", *targets, check=False)
    n_failed = len(slurm_cluster.jobs())
    before_rerun = job_counts(profile_snakemake(work, "-n", configfile=cfg, env=env).stdout)

    bad.write_bytes(good_bytes)
    os.utime(bad, ns=(st.st_atime_ns, st.st_mtime_ns))
    rerun, rerun_s = run()
    total_s = time.monotonic() - t0
    jobs = slurm_cluster.jobs()
    print(f"\nSLURM study: {len(jobs)} SLURM jobs in {total_s:.0f} s (world {first_s:.0f} s, "
          f"failing run {failed_s:.0f} s, rerun {rerun_s:.0f} s)")
    for j in jobs:
        print(f"  {j['JobId']:>3} {j['JobState']:9} {j['Partition']:4} {j['NumCPUs']:>2} "
              f"{j['TRES']:40} {j.get('TresPerJob', ''):16} {j['SubmitTime'][11:]} "
              f"{j['EndTime'][11:]} {j['Comment']}")
    return dict(work=work, full=full, first=first, failed=failed, rerun=rerun,
                before_rerun=before_rerun, jobs=jobs, bad=bad,
                runs=(jobs[:n_first], jobs[n_first:n_failed], jobs[n_failed:]),
                cluster=slurm_cluster)


@pytest.mark.slow
def test_slurm_study_produces_the_table(slurm_run):
    md = (slurm_run["work"] / "results/tables/table1.md").read_text()
    table = md.split("| variant |", 1)[1].split("\n\n", 1)[0]  # the first table: the metrics
    rows = [l for l in table.splitlines()[1:]
            if l.startswith("| ") and not l.startswith("| ---")]
    assert [r.split("|")[1].strip() for r in rows] == ["original", "face-blur", "body-maskout"]
    assert "Nothing to be done" in profile_snakemake(
        slurm_run["work"], "-n", configfile=slurm_run["work"] / "tiny.yaml",
        env=slurm_run["cluster"].env).stdout


@pytest.mark.slow
def test_every_job_ran_as_a_slurm_job(slurm_run):
    jobs = slurm_run["jobs"]
    assert all(j["JobState"] in ("COMPLETED", "FAILED") for j in jobs), jobs
    # every job of the study completed as a SLURM job, exactly once; the anonymize and audit
    # jobs as one group job
    done = tally(jobs, "COMPLETED")
    assert done == as_slurm_jobs(slurm_run["full"]), slurm_run["rerun"].stdout[-3000:]
    # nothing ran outside SLURM but the target rule `all` (no action); not checked on the
    # failing run, whose output quotes the SLURM logs (the jobs' own "localrule" lines)
    out = "".join(slurm_run[k].stdout + slurm_run[k].stderr for k in ("first", "rerun"))
    assert set(re.findall(r"localrule (\w+):", out)) <= {"all"}
    # the controller logged every submission
    log = (slurm_run["cluster"].log_dir / "slurmctld.log").read_text()
    submitted = set(re.findall(r"_slurm_rpc_submit_batch_job: JobId=(\d+)", log))
    assert submitted == {j["JobId"] for j in jobs}


@pytest.mark.slow
def test_gpu_rules_get_a_gpu_and_cpu_rules_do_not(slurm_run):
    for j in slurm_run["jobs"]:
        rule = rule_of(j["Comment"])
        gres = j.get("TresPerJob", "")
        if rule in GPU_RULES:
            # ANONBENCH_SLURM_GPU_MODEL=a100 -> --gpus=a100:1; sized for an A100 node
            assert gres == "gres:gpu:a100:1" and j["Partition"] == "gpu", j
            assert j["NumCPUs"] == "8", j
            assert "mem=62.50G" in j["TRES"] or "mem=32000M" in j["TRES"], j
        elif rule in ANNOTATE:  # the GPU partition, but the demo's face boxes want no GPU
            assert "gpu" not in gres and j["Partition"] == "gpu", j
        else:
            assert "gpu" not in gres and j["Partition"] == "main", j
    # the group job asks for its parallel members together: one CPU and mem_mb each
    group = [j for j in slurm_run["runs"][2] if rule_of(j["Comment"]) == f"group:{GROUP}"]
    # (each anonymize + audit chain is a component of its own)
    n = slurm_run["before_rerun"]["anonymize"]
    assert [j["NumCPUs"] for j in group] == [str(n)], (group, slurm_run["before_rerun"])
    assert f"mem={n * ANONYMIZE_MEM_MB}M" in group[0]["TRES"], group
    # the image checks left over, in a group job of their own
    checks = [j for j in slurm_run["runs"][2] if rule_of(j["Comment"]) == f"group:{CHECKS}"]
    assert [j["NumCPUs"] for j in checks] == [str(slurm_run["before_rerun"]["check_images"])]


@pytest.mark.slow
def test_failed_job_shows_its_log_and_is_retried_with_more_memory(slurm_run):
    p = slurm_run["failed"]
    out = p.stdout + p.stderr
    assert p.returncode != 0
    assert f"Error in group {CHECKS}" in out
    # the rule's own log, printed by Snakemake (show-failed-logs), and the SLURM log with
    # the step's exception
    assert re.search(r"Logfile results/logs/check_images/demo/00\d\.log:", out), out[-5000:]
    assert re.search(r"Logfile \S*\.snakemake/slurm_logs/group_\S+\.log:", out), out[-5000:]
    assert f"{slurm_run['bad'].name}: corrupt JPEG" in out
    # --retries 1 -> two SLURM jobs for the group, the second asking for more memory and time
    group = [j for j in slurm_run["runs"][1] if rule_of(j["Comment"]) == f"group:{CHECKS}"]
    assert [j["JobState"] for j in group] == ["FAILED"] * 2
    mem = [int(re.search(r"mem=(\d+)M", j["TRES"]).group(1)) for j in group]
    assert mem[0] < mem[1], mem
    limits = [minutes(j["TimeLimit"]) for j in group]
    assert limits[0] < limits[1], limits
    # keep-going: the jobs that do not need the checked shards finished
    ok = set(tally(slurm_run["runs"][1], "COMPLETED"))
    # (every variant's manifest, the original's too, waits for the decode check of all shards;
    # a shard's faces and anonymize jobs wait for its own, whose group job failed)
    assert ok == {"prepare", "shards", "check_val_images"}, ok


@pytest.mark.slow
def test_rerun_resumes_without_redoing_finished_jobs(slurm_run):
    full, before = slurm_run["full"], slurm_run["before_rerun"]
    finished = tally(slurm_run["runs"][0] + slurm_run["runs"][1], "COMPLETED")
    assert finished and f"group:{GROUP}" not in finished
    expected = {r: n - finished.get(r, 0) for r, n in full.items()}
    expected = {r: n for r, n in expected.items() if n}
    assert before == expected
    rerun = slurm_run["rerun"]
    assert job_counts(rerun.stdout + rerun.stderr) == expected
    # and SLURM saw exactly those: one group job + the ungrouped rules, all completed
    assert tally(slurm_run["runs"][2]) == as_slurm_jobs(expected)
    assert tally(slurm_run["runs"][2], "COMPLETED") == as_slurm_jobs(expected)


# A training longer than its SLURM time limit: with ANONBENCH_SLURM_TRAIN_RUNTIME=1 every train
# job gets --time=1 (one minute); stop_before_walltime_minutes 0.25 makes each attempt checkpoint
# and stop 45 s into its job (the end time read from squeue, as on a real cluster), after
# Snakemake and torch start (6-25 s, with the machine's speed). 800 demo iterations (0.065-0.3 s
# each on 2 cores, idle to busy) need 2 attempts on a fast idle machine (a 2-core AMD EPYC
# trained 600 in one), 3-4 on the 2-core machine of 2026-12-04: the test allows 13
# (--preemptible-retries 12, the profile's 6 plus room for a machine that shares its cores).
# One thread: beside another 2-thread training on 2 cores (make test's other worker), this tiny
# model's 2-thread iterations took 6 times as long (0.61 s against 0.10 s alone, means over 200;
# 13 attempts reached iteration 415), its 1-thread iterations 1.6 times (0.19 s against 0.12 s).
LONG_ITERATIONS = 800


@pytest.mark.slow
def test_training_longer_than_its_time_limit_finishes_over_attempts(slurm_cluster, tmp_path):
    config = tiny(load_config())
    config["variants"] = {"original": config["variants"]["original"]}
    config["tables"]["table1"]["variants"] = ["original"]
    config["models"]["maskrcnn-demo"].update({
        "iterations": LONG_ITERATIONS, "batch_size": 2, "threads": 1, "log_every": 1,
        "stop_before_walltime_minutes": 0.25, "checkpoint_every_minutes": None})
    cfg = write_config(tmp_path / "long.yaml", config)
    run = "results/demo/runs/original/maskrcnn-demo/seed0"
    # the training's inputs on this machine: only train goes through SLURM
    snakemake(tmp_path, "results/demo/anonymized/original/train.json", configfile=cfg)
    env = {**slurm_cluster.env, "ANONBENCH_SLURM_PARTITION": "main",
           "ANONBENCH_SLURM_GPU_PARTITION": "gpu", "ANONBENCH_SLURM_TRAIN_RUNTIME": "1"}
    before = len(slurm_cluster.jobs())
    t0 = time.monotonic()
    p = profile_snakemake(tmp_path, "--slurm-status-command", "squeue",
                          "--slurm-init-seconds-before-status-checks", "1",
                          "--preemptible-retries", "12", f"{run}/model.pt",
                          configfile=cfg, env=env, fast_poll=True, timeout=900)
    jobs = slurm_cluster.jobs()[before:]
    train = [j for j in jobs if rule_of(j["Comment"]) == "train"]
    print(f"\n{len(train)} train jobs in {time.monotonic() - t0:.0f} s: "
          + ", ".join(f"{j['JobState']} {j['RunTime']}" for j in train))
    assert {rule_of(j["Comment"]) for j in jobs} == {"train"}, jobs
    assert all(minutes(j["TimeLimit"]) == 1 for j in train), train
    # every attempt but the last stopped itself (a non-zero exit: FAILED, not SLURM's TIMEOUT)
    assert len(train) >= 2, p.stdout[-3000:]
    assert [j["JobState"] for j in train] == ["FAILED"] * (len(train) - 1) + ["COMPLETED"]
    assert (tmp_path / run / "model.pt").is_file()
    assert not (tmp_path / run / "resume.pt").exists()
    recs = [json.loads(line) for line in (tmp_path / run / "train_log.jsonl").read_text()
            .splitlines()]
    steps = [(r["iter"], r["attempt"]) for r in recs if "losses" in r]
    # every iteration trained and logged once, over the attempts in order: none redone
    assert [i for i, _ in steps] == list(range(1, LONG_ITERATIONS + 1))
    attempts = [a for _, a in steps]
    assert attempts == sorted(attempts) and set(attempts) == set(range(1, len(train) + 1))
    resumes = [r for r in recs if r.get("event") == "resume"]
    assert [(r["attempt"], r["reason"]) for r in resumes] == [
        (a, "walltime") for a in range(2, len(train) + 1)]
    assert [r["iter"] for r in resumes] == [
        max(i for i, a in steps if a == n) for n in range(1, len(train))]
