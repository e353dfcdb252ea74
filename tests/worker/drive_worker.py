"""Drives the real Azure Functions Python worker (azure-functions-runtime, v2 model) the way the host does:
worker init (which indexes function_app.py), function metadata, function load, then invocations. Runs under
the worker venv's Python 3.13, from the test in tests/worker; prints one JSON document.

    python drive_worker.py APP_DIR [FUNCTION_NAME ...]

The host speaks gRPC; the worker library takes the message classes as a parameter (`protos`), so the messages
here are small stand-ins with the fields the library reads and writes. Everything else is the worker's own code.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from typing import Any


class Message:
    """A protobuf message stand-in: keyword fields; WhichOneof reports the set member of a oneof group."""

    ONEOFS: dict[str, tuple[str, ...]] = {}

    def __init__(self, **fields: Any) -> None:
        self.__dict__.update(fields)

    def WhichOneof(self, group: str) -> str | None:
        for name in self.ONEOFS.get(group, ()):
            if self.__dict__.get(name) is not None:
                return name
        return None

    def to_dict(self) -> Any:
        return {k: _plain(v) for k, v in self.__dict__.items()}


def _plain(value: Any) -> Any:
    if isinstance(value, Message):
        return value.to_dict()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def message(name: str, **oneofs: tuple[str, ...]) -> type[Message]:
    return type(name, (Message,), {"ONEOFS": oneofs})


class StatusResult(Message):
    Failure, Success, Cancelled = 0, 1, 2


class BindingInfo(Message):
    # Direction and DataType enums of the host's FunctionRpc.proto, as the library compares them.
    in_, out, inout = 0, 1, 2
    undefined, string, binary, stream = 0, 1, 2, 3


class Protos:
    StatusResult = StatusResult
    BindingInfo = BindingInfo
    TypedData = message(
        "TypedData",
        data=("string", "json", "bytes", "stream", "http", "int", "double", "collection_bytes", "collection_string",
              "collection_double", "collection_sint64", "model_binding_data", "collection_model_binding_data"),
    )  # fmt: skip
    ParameterBinding = message("ParameterBinding", rpc_data=("data", "rpc_shared_memory"))
    WorkerInitResponse = message("WorkerInitResponse")
    WorkerMetadata = message("WorkerMetadata")
    FunctionMetadataResponse = message("FunctionMetadataResponse")
    FunctionLoadResponse = message("FunctionLoadResponse")
    FunctionEnvironmentReloadResponse = message("FunctionEnvironmentReloadResponse")
    InvocationResponse = message("InvocationResponse")
    RpcFunctionMetadata = message("RpcFunctionMetadata")
    RpcRetryOptions = message("RpcRetryOptions")
    RpcException = message("RpcException")
    RpcHttp = message("RpcHttp")
    RpcHttpCookie = message("RpcHttpCookie")
    NullableString = message("NullableString")
    NullableDouble = message("NullableDouble")
    NullableBool = message("NullableBool")
    NullableTimestamp = message("NullableTimestamp")


def request(**fields: Any) -> Message:
    """A StreamingMessage as the host sends it: .request.<kind> plus the properties the proxy worker adds."""
    return Message(request=Message(**fields), properties={"host": "127.0.0.1", "protos": Protos})


class Records(logging.Handler):
    """Counts what reaches the root logger during invocations, by logger name."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.by_logger: dict[str, int] = {}
        self.summaries: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.by_logger[record.name] = self.by_logger.get(record.name, 0) + 1
        if record.getMessage().startswith("run.summary "):
            self.summaries.append(record.getMessage())


async def drive(app_dir: str, invoke: list[str]) -> dict[str, Any]:
    import azure_functions_runtime as worker

    sys.path.insert(0, app_dir)  # the host starts the worker in the app directory
    init = await worker.worker_init_request(
        request(worker_init_request=Message(capabilities={}, function_app_directory=app_dir))
    )
    out: dict[str, Any] = {"init": {"status": init.result.status}}
    if init.result.status != StatusResult.Success:
        out["init"]["exception"] = init.result.exception.to_dict()
        return out
    metadata = await worker.functions_metadata_request(request(functions_metadata_request=Message()))
    functions = {}
    for fn in metadata.function_metadata_results:
        loaded = await worker.function_load_request(
            request(function_load_request=Message(function_id=fn.function_id, metadata=fn))
        )
        functions[fn.name] = {
            "function_id": fn.function_id,
            "entry_point": fn.entry_point,
            "script_file": fn.script_file,
            "language": fn.language,
            "raw_bindings": [json.loads(raw) for raw in fn.raw_bindings],
            "bindings": {name: {"type": b.type, "direction": b.direction} for name, b in fn.bindings.items()},
            "retry": _plain(fn.retry_options),
            "loaded": loaded.result.status == StatusResult.Success,
        }
    out["functions"] = functions

    records = Records()
    root = logging.getLogger()
    root.setLevel(logging.DEBUG)  # as the worker leaves it
    root.addHandler(records)
    worker.start_threadpool_executor()
    invocations = {}
    for number, name in enumerate(invoke):
        timer = Protos.TypedData(json=json.dumps({"IsPastDue": False, "ScheduleStatus": None}))
        response = await worker.invocation_request(
            request(
                invocation_request=Message(
                    invocation_id=f"worker-invocation-{number}",
                    function_id=functions[name]["function_id"],
                    input_data=[Protos.ParameterBinding(name="timer", data=timer)],
                    trigger_metadata={},
                    trace_context=Message(trace_parent="", trace_state="", attributes={}),
                    retry_context=Message(retry_count=0, max_retry_count=0, exception=None),
                )
            )
        )
        result = {"status": response.result.status}
        if response.result.status != StatusResult.Success:
            result["exception"] = response.result.exception.message
        invocations[name] = result
    worker.stop_threadpool_executor()
    root.removeHandler(records)
    out["invocations"] = invocations
    out["log_records"] = records.by_logger
    out["summaries"] = records.summaries
    return out


if __name__ == "__main__":
    print(json.dumps(asyncio.run(drive(sys.argv[1], sys.argv[2:]))))
