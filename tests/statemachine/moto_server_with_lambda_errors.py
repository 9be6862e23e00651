"""moto_server whose "simple" Lambda backend reports function errors the way Lambda does.

moto's docker-less Lambda backend replies to every Invoke with the next queued static
response and never sets the `X-Amz-Function-Error` header, so a Step Functions task can
never fail with a function error: an error object such as
`{"errorType": "AliasConflict", "errorMessage": "..."}` arrives as an ordinary result.

The Rust Lambda runtime answers a handler error (a `Diagnostic`) with exactly that object, and
Lambda then returns it with `X-Amz-Function-Error: Unhandled`; Step Functions turns it into
the error named by `errorType` with the object as the cause. This wrapper adds only that
header, for queued responses that are such an error object, and otherwise runs moto's own
server entry point unchanged (same arguments as `moto_server`).
"""

import json
import sys

from moto.awslambda_simple.models import LambdaSimpleBackend
from moto.server import main

_invoke = LambdaSimpleBackend.invoke


def _is_function_error(payload: bytes | None) -> bool:
    try:
        value = json.loads(payload or b"")
    except ValueError:
        return False
    return isinstance(value, dict) and set(value) == {"errorType", "errorMessage"}


def _invoke_reporting_errors(self, function_name, qualifier, body, headers, response_headers):
    payload = _invoke(self, function_name, qualifier, body, headers, response_headers)
    if _is_function_error(payload):
        response_headers["x-amz-function-error"] = "Unhandled"
    return payload


LambdaSimpleBackend.invoke = _invoke_reporting_errors

if __name__ == "__main__":
    main(sys.argv[1:])
