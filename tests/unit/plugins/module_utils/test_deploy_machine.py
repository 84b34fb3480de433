"""The deploy state machine under random faults: a stateful property test (hypothesis).

A run here takes the steps the blue_green role takes, with the real module_utils code
on real files in a temporary directory: the deploy_state module's actions (lock and
plan, record, reconcile, unlock), the live-slot marker of slot_switch, and the rescue
plan of deploy_flow that the role reads through the rescue_plan filter. Containers
are a dictionary, because Docker is not what is under test.

Hypothesis chains deploys (good, failing their gate, crashing inside the stability
window), rollbacks and reconciles, kills a run at any phase, fills the disk for the
next few fsyncs, and steps the wall clock back or forward. Faults are patched in; the
host's clock is never touched. After every step:

- the marker names a running slot that passed its gate (unless that slot crashed inside
  its stability window when no other slot could take the traffic back);
- state and marker agree after every run that completed, unless a write the run needed
  kept failing (the run then failed saying so, and the next deploy is refused until a
  reconcile has run);
- the lock is released, or breakable with force (its run is dead).
"""

from __future__ import annotations

import errno
import itertools
import os
import shutil
import tempfile
import time

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from ansible_collections.unitehub.platform.plugins.module_utils import clock, deploy_actions
from ansible_collections.unitehub.platform.plugins.module_utils import deploy_lock as locks
from ansible_collections.unitehub.platform.plugins.module_utils import deploy_state as ds
from ansible_collections.unitehub.platform.plugins.module_utils import slot_switch
from ansible_collections.unitehub.platform.plugins.module_utils.deploy_flow import rescue_plan

PHASES = ("lock", "start", "gate", "switch", "stability", "drain", "record")
VERSIONS = ["v%d" % n for n in range(1, 6)]


class Killed(Exception):
    """The controller died at this phase: nothing after it runs, not even the rescue."""


class FakeTime:
    """``time`` as the lock and the timestamps see it: the real clock plus a step."""

    def __init__(self):
        self.offset = 0.0

    def time(self):
        return time.time() + self.offset

    @staticmethod
    def monotonic():
        return time.monotonic()


class World:
    """One load balancer's files, the app's containers and the faults in force."""

    def __init__(self, root):
        self.root = root
        self.upstream = os.path.join(root, "lb")
        # A new load balancer has no marker: nginx serves blue until the first switch.
        os.makedirs(os.path.join(self.upstream, "live"))
        self.containers = {}
        self.alive = set()
        self.pids = itertools.count(10_000_000)
        self.failing_fsyncs = 0
        self.ever_switched = False

    def params(self, pid, **extra):
        spec = deploy_actions.argument_spec()
        params = {name: option.get("default") for name, option in spec.items()}
        params.update(state_dir=os.path.join(self.root, "deploy"), audit_log=os.path.join(self.root, "audit.jsonl"),
                      legacy_state_dir=os.path.join(self.root, "no-legacy-state"), owner="hypothesis",
                      run_id="run-%d" % pid, pid=pid)
        params.update(extra)
        return params

    def call(self, pid, **params):
        return deploy_actions.Run(self.params(pid, **params)).run()

    def state(self):
        return ds.load_state(ds.state_file(os.path.join(self.root, "deploy")), "unitehub")

    def marker(self):
        return slot_switch.current_slot(self.upstream) or slot_switch.DEFAULT_SLOT

    def lock(self):
        return locks.read_lock(locks.lock_file(os.path.join(self.root, "deploy")))


class Run:
    """One deploy or rollback, step by step as the role takes them."""

    def __init__(self, world, kill_at=None):
        self.world = world
        self.kill_at = kill_at
        self.pid = next(world.pids)
        self.token = None
        self.target = self.old = None
        self.switched = self.old_stopped = self.started = False
        self.completed = False
        self.refused = None
        self.write_failed = False
        self.state_before = None

    def step(self, phase):
        if phase == self.kill_at:
            self.world.alive.discard(self.pid)
            raise Killed(phase)

    def lock(self, **plan):
        try:
            result = self.world.call(self.pid, action="lock", upstream_dir=self.world.upstream, **plan)
        except locks.LockHeld as exc:
            if not exc.holder["stale"]:
                raise AssertionError("a lock is held by a live run although runs here never overlap: %s" % exc)
            # The operator reruns with force, which breaks only a stale lock.
            result = self.world.call(self.pid, action="lock", upstream_dir=self.world.upstream, force=True, **plan)
        self.token = result["lock"]["token"]
        return result

    def unlock(self):
        if locks.is_holder(self.world.lock(), token=self.token):
            self.world.call(self.pid, action="unlock", token=self.token)

    def execute(self, action, version=None, healthy=True, crash=False, image_ok=True):
        self.world.alive.add(self.pid)
        try:
            self.step("lock")
            try:
                plan = self.lock(slot="auto") if action == "deploy" else self.lock(for_rollback=True)
            except ds.DeployStateError as exc:
                # Refused before anything changed; a disagreement it finds predates it.
                self.refused = str(exc)
                return
            self.old = plan["serving_slot"]
            if action == "deploy":
                self.target = plan["target_slot"]
            else:
                self.target, version = plan["rollback"]["slot"], plan["rollback"]["version"]
            self.state_before = self.world.state()
            try:
                self.release(version, healthy, crash, image_ok)
            except (ds.DeployStateError, RuntimeError) as exc:
                self.rescue(version, exc)
            finally:
                self.unlock()
            self.completed = True
        except Killed:
            pass
        finally:
            self.world.alive.discard(self.pid)

    def release(self, version, healthy, crash, image_ok=True):
        world = self.world
        if not image_ok:
            raise RuntimeError("image: the tag does not exist in the registry")
        self.step("start")
        self.started = True
        world.containers[self.target] = {"version": version, "running": True, "gated": False}
        self.step("gate")
        if not healthy:
            raise RuntimeError("health gate: the new slot never passed")
        world.containers[self.target]["gated"] = True
        self.step("switch")
        slot_switch.set_live_marker(world.upstream, self.target)
        self.switched = world.ever_switched = True
        self.step("stability")
        if crash:
            others = [c for slot, c in world.containers.items() if slot != self.target and c["running"] and c["gated"]]
            world.containers[self.target].update(running=False, crashed_with_no_alternative=not others)
            raise RuntimeError("stability window: the new slot crashed")
        self.step("drain")
        if self.old is not None and self.old != self.target:
            world.containers[self.old]["running"] = False
            self.old_stopped = True
        self.step("record")
        world.call(self.pid, action="record", slot=self.target, version=version, status="active", activate=True,
                   replaced_status="stopped" if self.old_stopped else "standby", token=self.token,
                   event={"event": "deploy", "slot": self.target, "version": version, "outcome": "success"},
                   release_lock=True)

    def rescue(self, version, cause):
        world = self.world
        facts = {"switched": self.switched, "started": self.started, "target": self.target, "old": self.old,
                 "old_stopped": self.old_stopped,
                 "old_running": bool(self.old and world.containers.get(self.old, {}).get("running"))}
        revert = rescue_plan(facts)["revert"]
        if revert:
            # nginx is not running here: put_back moves the marker without verifying.
            slot_switch.put_back(world.upstream, self.old, fetch=None, pidfile=os.path.join(world.root, "no.pid"))
        outcome = rescue_plan(dict(facts, live_slot=world.marker(), reverted=revert))
        if outcome["stop_target"]:
            world.containers[self.target]["running"] = False
        if outcome["record"]:
            try:
                world.call(self.pid, action="record", slot=self.target, version=version, status=outcome["status"],
                           activate=outcome["activate"], replaced_status=outcome["replaced_status"],
                           token=self.token, release_lock=True,
                           event={"event": "failure", "slot": self.target, "outcome": "failed", "reason": str(cause)})
            except ds.DeployStateError:
                self.write_failed = True


class DeployMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.root = tempfile.mkdtemp(prefix="deploy-machine-")
        self.world = World(self.root)
        self.fake_time = FakeTime()
        self.patch = pytest.MonkeyPatch()
        self.patch.setattr(locks, "pid_alive", lambda pid: pid in self.world.alive)
        self.patch.setattr(locks, "time", self.fake_time)
        self.patch.setattr(clock, "time", self.fake_time)
        real_fsync = os.fsync

        def fsync(fd):
            if self.world.failing_fsyncs > 0:
                self.world.failing_fsyncs -= 1
                raise OSError(errno.ENOSPC, "No space left on device")
            return real_fsync(fd)

        self.patch.setattr(os, "fsync", fsync)
        self.last_run = None

    def teardown(self):
        self.patch.undo()
        shutil.rmtree(self.root, ignore_errors=True)

    # -- what happens ----------------------------------------------------------------

    @rule(version=st.sampled_from(VERSIONS), healthy=st.booleans(), crash=st.booleans(), image_ok=st.booleans(),
          kill_at=st.none() | st.sampled_from(PHASES))
    def deploy(self, version, healthy, crash, image_ok, kill_at):
        self.last_run = Run(self.world, kill_at)
        self.last_run.execute("deploy", version, healthy, crash, image_ok)

    @rule(healthy=st.booleans(), crash=st.booleans(), kill_at=st.none() | st.sampled_from(PHASES))
    def rollback(self, healthy, crash, kill_at):
        self.last_run = Run(self.world, kill_at)
        self.last_run.execute("rollback", healthy=healthy, crash=crash)

    @precondition(lambda self: self.world.state()["active_slot"] is not None or self.world.ever_switched)
    @rule()
    def reconcile(self):
        """playbooks/reconcile.yml: the marker's slot, if it runs, becomes the state's live slot."""
        world = self.world
        live = world.marker()
        container = world.containers.get(live)
        if ds.route_problem(world.state(), live) is None or not container or not container["running"]:
            return
        run = Run(world)
        world.alive.add(run.pid)
        try:
            result = run.lock()
            world.call(run.pid, action="reconcile", upstream_dir=world.upstream, slot=live,
                       version=container["version"], token=result["lock"]["token"], release_lock=True,
                       event={"event": "reconcile", "slot": live, "outcome": "success"})
        except ds.DeployStateError:
            pass  # a write fault: the state keeps disagreeing, and deploys keep being refused
        finally:
            run.unlock()
            world.alive.discard(run.pid)
        self.last_run = None

    @rule(fsyncs=st.integers(min_value=1, max_value=3))
    def disk_fills_up(self, fsyncs):
        self.world.failing_fsyncs = fsyncs

    @rule(seconds=st.sampled_from([-7200.0, -30.0, 45.0, 7200.0]))
    def clock_steps(self, seconds):
        self.fake_time.offset += seconds

    # -- what must hold ----------------------------------------------------------------

    @invariant()
    def the_marker_names_a_running_slot_that_passed_its_gate(self):
        """...unless that slot crashed inside its stability window while no other slot could
        take the traffic back (a first deploy): then nothing better exists."""
        world = self.world
        if not world.ever_switched:
            return
        serving = world.containers.get(world.marker(), {})
        assert serving.get("gated"), "the marker names %s, which never passed its gate: %s" % (world.marker(), serving)
        if not serving["running"]:
            assert serving.get("crashed_with_no_alternative"), (
                "the marker names %s, which is not running: %s; containers %s"
                % (world.marker(), serving, world.containers))

    @invariant()
    def state_and_marker_agree_after_a_completed_run(self):
        run = self.last_run
        if run is None or not run.completed or run.write_failed:
            return
        state = self.world.state()
        if state["active_slot"] is not None:
            assert state["active_slot"] == self.world.marker(), "state %s, marker %s" % (
                state["active_slot"], self.world.marker())

    @invariant()
    def a_run_that_failed_before_starting_its_slot_changed_no_slot(self):
        run = self.last_run
        if run is None or not run.completed or run.started or run.refused:
            return
        before, after = run.state_before, self.world.state()
        assert before["slots"] == after["slots"] and before["active_slot"] == after["active_slot"]

    @invariant()
    def the_lock_is_released_or_breakable(self):
        lock = self.world.lock()
        assert lock is None or lock["stale"], "a lock of a finished run is still held: %s" % lock

    @invariant()
    def a_disagreement_refuses_the_next_deploy(self):
        world = self.world
        problem = ds.route_problem(world.state(), slot_switch.current_slot(world.upstream))
        if problem is not None:
            assert problem.startswith("the load balancer serves slot %s" % world.marker())


TestDeployMachine = DeployMachine.TestCase
TestDeployMachine.settings = settings(max_examples=300, stateful_step_count=30, deadline=None,
                                      suppress_health_check=[HealthCheck.too_slow])
