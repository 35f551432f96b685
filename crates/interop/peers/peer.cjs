// One Lambda invocation through the official AWS SDK for JavaScript v3, for the interop tests.
//
// Usage: node peer.cjs < CASE_JSON (see tests/sdk_peers.rs for its fields), with NODE_PATH
// pointing at the node_modules that .ci/sdk-peers.sh installs. Writes the same JSON lines as
// peer.py (its docstring lists them), each as it happens.
"use strict";

const {
  LambdaClient,
  InvokeCommand,
  InvokeWithResponseStreamCommand,
} = require("@aws-sdk/client-lambda");

// Resolves once the line is handed to stdout, so that lines leave in order and at once
function emit(obj) {
  return new Promise((resolve) => process.stdout.write(JSON.stringify(obj) + "\n", resolve));
}

const b64 = (bytes) => Buffer.from(bytes ?? []).toString("base64");

function error(stage, e) {
  const meta = e.$metadata ?? {};
  return {
    stage,
    class: e.constructor.name,
    code: e.name,
    message: e.message,
    status: meta.httpStatusCode ?? null,
    attempts: meta.attempts ?? null,
  };
}

async function main() {
  const c = JSON.parse(require("node:fs").readFileSync(0, "utf8"));
  const settings = {
    maxAttempts: c.max_attempts,
    requestHandler: { connectionTimeout: 10_000, requestTimeout: 60_000 },
  };
  // with from_env: endpoint, region and keys from AWS_ENDPOINT_URL_LAMBDA, AWS_REGION (the
  // SDK reads no AWS_DEFAULT_REGION) and the key variables, as `lambda-stream serve`
  // exports them
  if (!c.from_env) {
    settings.endpoint = c.endpoint;
    settings.region = "us-east-1";
    settings.credentials = { accessKeyId: c.key, secretAccessKey: c.secret };
  }
  const client = new LambdaClient(settings);
  const args = { FunctionName: c.function, Payload: Buffer.from(c.payload) };
  for (const name of ["Qualifier", "LogType", "InvocationType", "ClientContext", "TenantId"]) {
    if (c[name] != null) args[name] = c[name];
  }

  if (c.op === "invoke") {
    let r;
    try {
      r = await client.send(new InvokeCommand(args));
    } catch (e) {
      return emit({ error: error("send", e) });
    }
    return emit({
      buffered: {
        status: r.StatusCode,
        executed_version: r.ExecutedVersion ?? null,
        function_error: r.FunctionError ?? null,
        log_result: r.LogResult ?? null,
        payload: b64(r.Payload),
      },
    });
  }

  // the same invocation `repeat` times through one client (its connections reused)
  for (let i = 0; i < (c.repeat ?? 1); i++) {
    if (!(await streamOnce(client, args))) return;
  }
}

// One streaming invocation, written out as it happens; whether it ended without an error
async function streamOnce(client, args) {
  let r;
  try {
    r = await client.send(new InvokeWithResponseStreamCommand(args));
  } catch (e) {
    await emit({ error: error("send", e) });
    return false;
  }
  await emit({
    head: {
      status: r.StatusCode,
      executed_version: r.ExecutedVersion ?? null,
      content_type: r.ResponseStreamContentType ?? null,
      request_id: r.$metadata.requestId ?? null,
      attempts: r.$metadata.attempts ?? null,
    },
  });
  try {
    // an empty body (DryRun) has no event stream
    for await (const event of r.EventStream ?? []) {
      if (event.PayloadChunk) {
        await emit({ chunk: b64(event.PayloadChunk.Payload) });
      } else if (event.InvokeComplete) {
        const done = event.InvokeComplete;
        await emit({
          complete: {
            error_code: done.ErrorCode ?? null,
            error_details: done.ErrorDetails ?? null,
            log_result: done.LogResult ?? null,
          },
        });
      } else {
        await emit({ other: Object.keys(event).sort() });
      }
    }
  } catch (e) {
    await emit({ error: error("stream", e) });
    return false;
  }
  await emit({ end: true });
  return true;
}

main().catch((e) => {
  console.error("peer.cjs failed:", e);
  process.exit(1);
});
