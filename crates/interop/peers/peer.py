"""One Lambda invocation through boto3, the official AWS SDK for Python, for the interop tests.

Usage: python3 peer.py < CASE_JSON (see tests/sdk_peers.rs for its fields). Writes what the SDK
delivered as JSON lines on stdout, each flushed as it happens, so that the test sees a chunk
while the function is still running:

  {"head": {...}}       the streaming response's metadata
  {"chunk": BASE64}     one PayloadChunk
  {"complete": {...}}   InvokeComplete
  {"other": [NAMES]}    any other event
  {"end": true}         the SDK's event stream ended without an error
  {"buffered": {...}}   the answer of a buffered Invoke
  {"error": {...}}      what the SDK raised, at "send" or while reading the "stream"
"""

import base64
import json
import sys

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def b64(data):
    return base64.b64encode(data).decode()


def error(stage, e):
    if isinstance(e, ClientError):
        meta = e.response.get("ResponseMetadata", {})
        return {
            "stage": stage,
            "class": type(e).__name__,
            "code": e.response.get("Error", {}).get("Code"),
            "message": e.response.get("Error", {}).get("Message"),
            "status": meta.get("HTTPStatusCode"),
            "attempts": meta.get("RetryAttempts", 0) + 1,
        }
    return {"stage": stage, "class": type(e).__name__, "code": None, "message": str(e)}


def main():
    case = json.load(sys.stdin)
    config = Config(
        retries={"mode": "standard", "max_attempts": case["max_attempts"]},
        connect_timeout=10,
        read_timeout=60,
    )
    if case.get("from_env"):
        # endpoint, region and keys from AWS_ENDPOINT_URL_LAMBDA, AWS_DEFAULT_REGION (boto3
        # reads no AWS_REGION) and the key variables, as `lambda-stream serve` exports them
        lam = boto3.client("lambda", config=config)
    else:
        lam = boto3.client(
            "lambda",
            endpoint_url=case["endpoint"],
            region_name="us-east-1",
            aws_access_key_id=case["key"],
            aws_secret_access_key=case["secret"],
            config=config,
        )
    args = {"FunctionName": case["function"], "Payload": case["payload"].encode()}
    for name in ("Qualifier", "LogType", "InvocationType", "ClientContext", "TenantId"):
        if case.get(name) is not None:
            args[name] = case[name]

    if case["op"] == "invoke":
        try:
            r = lam.invoke(**args)
        except Exception as e:  # a service error, or a connection or certificate failure
            emit({"error": error("send", e)})
            return
        emit({"buffered": {
            "status": r["StatusCode"],
            "executed_version": r.get("ExecutedVersion"),
            "function_error": r.get("FunctionError"),
            "log_result": r.get("LogResult"),
            "payload": b64(r["Payload"].read()),
        }})
        return

    # the same invocation `repeat` times through one client (its connections reused)
    for _ in range(case.get("repeat", 1)):
        if not stream_once(lam, args):
            return


def stream_once(lam, args):
    """One streaming invocation, written out as it happens; whether it ended without an error"""
    try:
        r = lam.invoke_with_response_stream(**args)
    except Exception as e:  # a service error, or a connection or certificate failure
        emit({"error": error("send", e)})
        return False
    meta = r["ResponseMetadata"]
    emit({"head": {
        "status": r["StatusCode"],
        "executed_version": r.get("ExecutedVersion"),
        "content_type": r.get("ResponseStreamContentType"),
        "request_id": meta.get("RequestId"),
        "attempts": meta.get("RetryAttempts", 0) + 1,
    }})
    try:
        # an empty body (DryRun) has no event stream
        for event in r.get("EventStream") or []:
            if "PayloadChunk" in event:
                emit({"chunk": b64(event["PayloadChunk"]["Payload"])})
            elif "InvokeComplete" in event:
                c = event["InvokeComplete"]
                emit({"complete": {
                    "error_code": c.get("ErrorCode"),
                    "error_details": c.get("ErrorDetails"),
                    "log_result": c.get("LogResult"),
                }})
            else:
                emit({"other": sorted(event)})
    except Exception as e:  # whatever the SDK raises mid-stream is what the test looks at
        emit({"error": error("stream", e)})
        return False
    emit({"end": True})
    return True


main()
