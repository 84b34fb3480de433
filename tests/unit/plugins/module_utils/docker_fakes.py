"""An in-memory stand-in for the few ``docker.APIClient`` methods the
collection's Docker logic calls. It behaves like dockerd where the logic
depends on it: a container's environment and labels are the image's with the
given ones on top, names are unique, ``stop`` only touches running
containers, removing an image used by a container is refused."""

from __future__ import annotations

import copy
import hashlib
import itertools
import os

from docker.errors import APIError, ImageNotFound, NotFound
from requests.exceptions import ReadTimeout

_ids = itertools.count(1)

# The USER of the fake's images: the tests' own uid, which the secret files can be given to without
# root; as root, a non-root uid (root is refused as a container's user unless allowed).
IMAGE_UID = os.geteuid() or 10001
IMAGE_USER = "%d:%d" % (IMAGE_UID, IMAGE_UID)


def _new_id(prefix=""):
    return prefix + hashlib.sha256(str(next(_ids)).encode()).hexdigest()


class FakeResponse:
    """Enough of requests.Response for docker.errors.APIError."""

    def __init__(self, status_code, reason="error"):
        self.status_code = status_code
        self.reason = reason


def conflict(message):
    return APIError("409 Conflict", response=FakeResponse(409, "Conflict"), explanation=message)


MUTATING = {"create_container", "start", "stop", "remove_container", "build", "pull", "remove_image"}


class FakeDockerAPI:
    def __init__(self):
        self.images_by_id = {}
        self.tags = {}
        self.containers_by_id = {}
        self.calls = []
        self.log_lines = {}
        self.fail_on = {}
        self.build_stream = None
        self.pull_stream = None
        # What a pull finds, by reference (see ``push``); a reference not in it is pulled as a new image.
        self.registry = {}
        # container name -> how its command ends when waited for (see ``wait``).
        self.runs = {}

    # -- helpers for tests ----------------------------------------------------------------

    def add_image(self, ref, env=None, labels=None, repo_digests=None, user=None):
        """A new image tagged ``ref`` (``None``: untagged), with ``repo_digests`` (``<repo>@sha256:...``).
        Its USER is ``user``, by default ``IMAGE_USER``, a non-root uid."""
        image_id = _new_id("sha256:")
        self.images_by_id[image_id] = {
            "Id": image_id,
            "Config": {"Env": list(env or ["PATH=/usr/bin:/bin"]), "Labels": labels,
                       "User": IMAGE_USER if user is None else user},
            "Created": "2026-11-29T08:00:00Z",
            "Size": 1000,
            "RepoDigests": list(repo_digests or []),
        }
        if ref is not None:
            self.tags[ref] = image_id
        return image_id

    def push(self, ref, image_id):
        """Put ``image_id`` into the fake registry as ``ref`` (``<repo>:<tag>``); returns its repo digest,
        which a pull of ``ref`` (or of that digest) then adds to the image."""
        digest = "%s@%s" % (ref.rsplit(":", 1)[0], _new_id("sha256:"))
        self.registry[ref] = (image_id, digest)
        self.registry[digest] = (image_id, digest)
        return digest

    def mutating_calls(self):
        return [c for c in self.calls if c[0] in MUTATING]

    def call_names(self):
        return [c[0] for c in self.calls if c[0] in MUTATING]

    def _record(self, _method, *args, **kwargs):
        self.calls.append((_method, args, kwargs))
        if _method in self.fail_on:
            raise self.fail_on[_method]

    def container(self, name_or_id):
        """The stored container itself (tests may change it; inspect returns copies)."""
        for attrs in self.containers_by_id.values():
            if attrs["Id"] == name_or_id or attrs["Name"] == "/" + name_or_id:
                return attrs
        raise NotFound("No such container: %s" % name_or_id)

    # -- images -----------------------------------------------------------------------------

    def inspect_image(self, ref):
        self.calls.append(("inspect_image", (ref,), {}))
        image_id = self.tags.get(ref, ref if ref in self.images_by_id else None)
        if image_id is None:  # a repo digest names the image that carries it
            image_id = next((i for i, a in self.images_by_id.items() if ref in a["RepoDigests"]), None)
        if image_id is None:
            raise ImageNotFound("No such image: %s" % ref)
        attrs = copy.deepcopy(self.images_by_id[image_id])
        attrs["RepoTags"] = sorted(t for t, i in self.tags.items() if i == image_id)
        return attrs

    def images(self, name=None):
        result = []
        for image_id in self.images_by_id:
            tags = sorted(t for t, i in self.tags.items() if i == image_id)
            if name is None or any(t.rsplit(":", 1)[0] == name for t in tags):
                result.append({"Id": image_id, "RepoTags": tags})
        return result

    def remove_image(self, ref, force=False, noprune=False):
        self._record("remove_image", ref, force=force, noprune=noprune)
        image_id = self.tags.get(ref)
        if image_id is None:
            raise ImageNotFound("No such image: %s" % ref)
        others = [t for t, i in self.tags.items() if i == image_id and t != ref]
        users = [c for c in self.containers_by_id.values() if c["Image"] == image_id]
        if not others and users:
            raise conflict("unable to remove repository reference %s: container is using its referenced image" % ref)
        del self.tags[ref]
        if not others:
            del self.images_by_id[image_id]

    def build(self, **kwargs):
        self._record("build", **kwargs)
        if self.build_stream is not None:
            return iter(self.build_stream)
        image_id = self.add_image(kwargs["tag"])
        return iter(
            [
                {"stream": "Step 1/2 : FROM base\n"},
                {"aux": {"ID": image_id}},
                {"stream": "Successfully tagged %s\n" % kwargs["tag"]},
            ]
        )

    def pull(self, repository, tag=None, stream=False, decode=False, auth_config=None):
        self._record("pull", repository, tag=tag, stream=stream, decode=decode, auth_config=auth_config)
        if self.pull_stream is not None:
            return iter(self.pull_stream)
        by_digest = tag.startswith("sha256:")
        ref = "%s%s%s" % (repository, "@" if by_digest else ":", tag)
        if ref in self.registry:
            image_id, digest = self.registry[ref]
            if image_id not in self.images_by_id:
                self.images_by_id[image_id] = {
                    "Id": image_id, "Config": {"Env": [], "Labels": None, "User": IMAGE_USER}, "Created": "2026-11-29T08:00:00Z",
                    "Size": 1000, "RepoDigests": [],
                }
            if digest not in self.images_by_id[image_id]["RepoDigests"]:
                self.images_by_id[image_id]["RepoDigests"].append(digest)
            if not by_digest:
                self.tags[ref] = image_id
        elif by_digest:
            self.add_image(None, repo_digests=[ref])
        else:
            self.add_image(ref)
        return iter([{"status": "Pulling from %s" % repository, "id": tag}, {"status": "Download complete"}])

    # -- containers -----------------------------------------------------------------------

    def containers(self, all=False):  # noqa: A002 - the SDK's name
        return [
            {"Id": c["Id"], "Names": [c["Name"]], "ImageID": c["Image"]}
            for c in self.containers_by_id.values()
            if all or c["State"]["Running"]
        ]

    def inspect_container(self, name_or_id):
        self._record("inspect_container", name_or_id)
        return copy.deepcopy(self.container(name_or_id))

    # create_host_config's keywords and the HostConfig keys docker inspect shows them under.
    HOST_CONFIG_KEYS = {
        "network_mode": "NetworkMode", "restart_policy": "RestartPolicy", "binds": "Binds", "cap_drop": "CapDrop",
        "cap_add": "CapAdd", "security_opt": "SecurityOpt", "read_only": "ReadonlyRootfs", "tmpfs": "Tmpfs",
        "pids_limit": "PidsLimit", "mem_limit": "Memory",
    }

    @classmethod
    def create_host_config(cls, **kwargs):
        unknown = set(kwargs) - set(cls.HOST_CONFIG_KEYS)
        assert not unknown, "create_host_config got keywords the fake does not know: %s" % unknown
        config = {"NetworkMode": kwargs.get("network_mode"), "RestartPolicy": kwargs.get("restart_policy")}
        for keyword, key in cls.HOST_CONFIG_KEYS.items():
            if kwargs.get(keyword) not in (None, [], {}):
                config[key] = copy.deepcopy(kwargs[keyword])
        # Docker (20.10 and later) shows added capabilities with their CAP_ prefix.
        if "CapAdd" in config:
            config["CapAdd"] = ["CAP_" + c for c in config["CapAdd"]]
        return config

    def create_container(
        self, image, name=None, environment=None, labels=None, host_config=None, stop_timeout=None, detach=False,
        **extra
    ):
        # command, healthcheck ...: recorded only when given, as the SDK passes them on only then.
        self._record(
            "create_container",
            image,
            name=name,
            environment=environment,
            labels=labels,
            host_config=host_config,
            stop_timeout=stop_timeout,
            detach=detach,
            **extra
        )
        if any(c["Name"] == "/" + name for c in self.containers_by_id.values()):
            raise conflict('Conflict. The container name "/%s" is already in use' % name)
        image_attrs = self.inspect_image(image)
        env = dict(i.partition("=")[::2] for i in image_attrs["Config"]["Env"] or [])
        env.update(environment or {})
        merged_labels = dict(image_attrs["Config"]["Labels"] or {})
        merged_labels.update(labels or {})
        container_id = _new_id()
        self.containers_by_id[container_id] = {
            "Id": container_id,
            "Name": "/" + name,
            "Image": image_attrs["Id"],
            "Config": {
                "Image": image,
                "Env": ["%s=%s" % kv for kv in env.items()],
                "Labels": merged_labels,
                "StopTimeout": stop_timeout,
                "Cmd": extra.get("command"),
                "User": extra["user"] if extra.get("user") is not None else image_attrs["Config"].get("User", ""),
                "Healthcheck": extra.get("healthcheck"),
            },
            "HostConfig": dict(host_config or {}),
            "State": {
                "Status": "created",
                "Running": False,
                "Restarting": False,
                "ExitCode": 0,
                "StartedAt": "0001-01-01T00:00:00Z",
            },
            "RestartCount": 0,
        }
        return {"Id": container_id, "Warnings": []}

    def start(self, container):
        self._record("start", container)
        attrs = self.container(container)
        attrs["State"].update(Status="running", Running=True, ExitCode=0, StartedAt="2026-11-29T08:00:01Z")

    def stop(self, container, timeout=None):
        self._record("stop", container, timeout=timeout)
        attrs = self.container(container)
        exit_code = self.runs.get(attrs["Name"].lstrip("/"), {}).get("exit_code_on_stop", 0)
        attrs["State"].update(Status="exited", Running=False, Restarting=False, ExitCode=exit_code)

    def wait(self, container, timeout=None):
        """Ends the container's command as ``runs[name]`` says: ``{"exit_code": n, "output": [lines]}``
        (exit 0, no output by default), or with ``"hangs": True`` the read times out after ``timeout``
        seconds (no sleep) while the command keeps running; ``exit_code_on_stop`` is what ``stop`` then
        leaves (0 by default, as for a process that exits cleanly on SIGTERM)."""
        self._record("wait", container, timeout=timeout)
        attrs = self.container(container)
        name = attrs["Name"].lstrip("/")
        plan = self.runs.get(name, {})
        self.log_lines[name] = list(plan.get("output", []))
        if plan.get("hangs"):
            raise ReadTimeout("UnixHTTPConnectionPool(host='localhost', port=None): Read timed out. (read timeout=%s)"
                              % timeout)
        exit_code = plan.get("exit_code", 0)
        attrs["State"].update(Status="exited", Running=False, Restarting=False, ExitCode=exit_code)
        return {"StatusCode": exit_code, "Error": None}

    def remove_container(self, container, force=False):
        self._record("remove_container", container, force=force)
        attrs = self.container(container)
        del self.containers_by_id[attrs["Id"]]

    def logs(self, container, stdout=True, stderr=True, tail="all", timestamps=False):
        self._record("logs", container, tail=tail)
        lines = self.log_lines.get(self.container(container)["Name"].lstrip("/"), [])
        if tail != "all":
            lines = lines[-tail:] if tail else []
        return "".join(line + "\n" for line in lines).encode()
