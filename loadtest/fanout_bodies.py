#!/usr/bin/env python3
"""Writes the request bodies of the apiserver fan-out load test.

Usage: fanout_bodies.py OUT_DIR [REGISTRY]

REGISTRY is the host:port of the local registry that holds the signed
fixture image (default: the placeholder REGISTRY_ADDR, which is what the
committed copies in loadtest/bodies/fanout/ carry). One JSON file per body
kind, plus mix.tsv: kind, path, weight (percent of all reviews), expected
decision, containers per review, description.
"""

import json
import os
import sys

PLACEHOLDER = "REGISTRY_ADDR"


def image_review(images, namespace):
    """An ImageReview as the ImagePolicyWebhook admission plugin sends it."""
    return {
        "kind": "ImageReview",
        "apiVersion": "imagepolicy.k8s.io/v1alpha1",
        "metadata": {"creationTimestamp": None},
        "spec": {
            "containers": [{"image": i} for i in images],
            "annotations": {"mycluster.image-policy.k8s.io/team": "platform"},
            "namespace": namespace,
        },
        "status": {"allowed": False},
    }


def container(name, image):
    return {
        "name": name,
        "image": image,
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
        "imagePullPolicy": "IfNotPresent",
    }


def pod_spec(images, init_images=()):
    spec = {
        "containers": [container(f"c{n}", i) for n, i in enumerate(images)],
        "restartPolicy": "Always",
        "terminationGracePeriodSeconds": 30,
        "dnsPolicy": "ClusterFirst",
        "serviceAccountName": "default",
        "securityContext": {},
        "schedulerName": "default-scheduler",
        "enableServiceLinks": True,
        "preemptionPolicy": "PreemptLowerPriority",
        "priority": 0,
    }
    if init_images:
        spec["initContainers"] = [container(f"init{n}", i) for n, i in enumerate(init_images)]
    return spec


def admission_pod(uid, namespace, images, init_images=()):
    """An AdmissionReview for a pod CREATE, as a ReplicaSet controller's
    request reaches a validating webhook."""
    gvk = {"group": "", "version": "v1", "kind": "Pod"}
    gvr = {"group": "", "version": "v1", "resource": "pods"}
    return {
        "kind": "AdmissionReview",
        "apiVersion": "admission.k8s.io/v1",
        "request": {
            "uid": uid,
            "kind": gvk,
            "resource": gvr,
            "requestKind": gvk,
            "requestResource": gvr,
            "name": "",
            "namespace": namespace,
            "operation": "CREATE",
            "userInfo": {
                "username": "system:serviceaccount:kube-system:replicaset-controller",
                "uid": "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9",
                "groups": ["system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"],
            },
            "object": {
                "kind": "Pod",
                "apiVersion": "v1",
                "metadata": {
                    "generateName": "web-7d9f8c6b5-",
                    "namespace": namespace,
                    "labels": {"app": "web", "pod-template-hash": "7d9f8c6b5"},
                    "ownerReferences": [
                        {
                            "apiVersion": "apps/v1",
                            "kind": "ReplicaSet",
                            "name": "web-7d9f8c6b5",
                            "uid": "6a5b4c3d-2e1f-4a0b-9c8d-7e6f5a4b3c2d",
                            "controller": True,
                            "blockOwnerDeletion": True,
                        }
                    ],
                },
                "spec": pod_spec(images, init_images),
                "status": {},
            },
            "oldObject": None,
            "dryRun": False,
            "options": {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1"},
        },
    }


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    out = sys.argv[1]
    reg = sys.argv[2] if len(sys.argv) == 3 else PLACEHOLDER
    os.makedirs(out, exist_ok=True)
    signed = f"{reg}/fixtures/app:v1"
    ip = "/imagepolicy?timeout=30s"
    va = "/validate"
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "bodies", "admission-deployment.json"), encoding="utf-8") as f:
        deployment = json.load(f)
    # kind, path, weight %, expected, body
    kinds = [
        ("ir-pod1", ip, 14, "allow", image_review(["ghcr.io/mycorp/payments-api:v2.14.3"], "payments"),
         "ImageReview, 1 container"),
        ("ir-pod3", ip, 14, "allow", image_review([
            "registry.k8s.io/ingress-nginx/controller:v1.10.1",
            "ghcr.io/mycorp/payments-api:v2.14.3",
            "docker.io/library/busybox:1.36@sha256:9d75f0d7c398df565d7ac04c6819b62d6d8f9560f5eb4672596ecd8f7e96ae91",
        ], "payments"), "ImageReview, 3 containers (one by digest)"),
        ("ir-pod5", ip, 7, "allow", image_review([
            "ghcr.io/mycorp/shop/web:v3.2.0",
            "ghcr.io/mycorp/shop/cart:v3.2.0",
            "registry.k8s.io/pause:3.9",
            "docker.io/library/redis:7.2.4",
            "registry.example.com/observability/otel-collector:0.98.0",
        ], "shop"), "ImageReview, 5 containers"),
        ("ir-verify", ip, 10, "allow", image_review([signed, "registry.k8s.io/pause:3.9"], "payments"),
         "ImageReview, 2 containers, one signed image under a `verify` rule"),
        ("ir-deny", ip, 5, "deny", image_review(["ghcr.io/mycorp/payments-api:v2.14.3", "nginx"], "payments"),
         "ImageReview, 2 containers, one without a tag (`nginx`): denied"),
        ("ar-pod2", va, 20, "allow", admission_pod("9c1f0c4e-0002-4000-8000-000000000002", "shop", [
            "registry.example.com/shop/web:1.4.2", "registry.example.com/shop/sidecar:2.0.0"]),
         "AdmissionReview, pod CREATE, 2 containers"),
        ("ar-pod4", va, 10, "allow", admission_pod("9c1f0c4e-0004-4000-8000-000000000004", "shop", [
            "registry.example.com/shop/web:1.4.2",
            "registry.example.com/shop/sidecar:2.0.0",
            "ghcr.io/mycorp/envoy:v1.30.1",
        ], ["registry.example.com/shop/migrate:1.4.2"]),
         "AdmissionReview, pod CREATE, 3 containers + 1 init container"),
        ("ar-deploy", va, 5, "allow", deployment,
         "AdmissionReview, Deployment CREATE, 2 containers + 1 init container"),
        ("ar-verify", va, 10, "allow", admission_pod("9c1f0c4e-0006-4000-8000-000000000006", "payments", [
            signed, "ghcr.io/mycorp/log-shipper:v1.2.0"]),
         "AdmissionReview, pod CREATE, 2 containers, one signed image under a `verify` rule"),
        ("ar-deny", va, 5, "deny", admission_pod("9c1f0c4e-0008-4000-8000-000000000008", "shop", [
            "quay.io/cryptominer/xmrig:6.21.0", "docker.io/library/busybox:latest"]),
         "AdmissionReview, pod CREATE, untrusted registry and `latest`: denied"),
    ]
    assert sum(k[2] for k in kinds) == 100
    with open(os.path.join(out, "mix.tsv"), "w", encoding="utf-8") as mix:
        for name, path, weight, expected, body, desc in kinds:
            with open(os.path.join(out, f"{name}.json"), "w", encoding="utf-8") as f:
                json.dump(body, f, separators=(",", ":"))
            if body["kind"] == "ImageReview":
                n = len(body["spec"]["containers"])
            else:
                spec = body["request"]["object"]["spec"]
                spec = spec.get("template", {}).get("spec", spec)
                n = len(spec.get("containers", [])) + len(spec.get("initContainers", []))
            mix.write(f"{name}\t{path}\t{weight}\t{expected}\t{n}\t{desc}\n")


if __name__ == "__main__":
    main()
