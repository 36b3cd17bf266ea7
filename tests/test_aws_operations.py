"""Status, drift, listing (paging, 200 deployments), local and signed invoke, and the CLI end to end."""

from __future__ import annotations

import io
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

try:
    from tests.aws_servers import EXAMPLES, aws, moto_server  # noqa: F401
except ImportError:  # tests/ on sys.path instead of the project root
    from aws_servers import EXAMPLES, aws, moto_server  # noqa: F401

pytestmark = pytest.mark.aws

HELLO = (EXAMPLES / "hello.weave.yaml").read_text()


def deploy(mgr, name="demo", **values):
    return mgr.deploy({"name": name, "provider": "aws", "weave_text": HELLO, **values})


def test_status_reports_state_endpoint_and_live_version(aws):
    mgr = aws.manager()
    info = deploy(mgr)
    st = mgr.status("demo", "aws")
    assert st.status.value == "active" and st.version == "1" and st.endpoint == info.endpoint
    assert st.health == "active"


@pytest.mark.parametrize("conf, expected", [
    ({"State": "Active", "LastUpdateStatus": "Successful"}, "active"),
    ({"State": "Pending"}, "deploying"),
    ({"State": "Active", "LastUpdateStatus": "InProgress"}, "deploying"),
    ({"State": "Failed", "StateReason": "bad"}, "failed"),
    ({"State": "Active", "LastUpdateStatus": "Failed"}, "failed"),
    ({"State": "Inactive"}, "active"),
])
def test_lambda_state_mapping(conf, expected):
    from weave_nb.providers.aws.operations import lambda_status

    assert lambda_status(conf)[0].value == expected


def test_function_deleted_behind_our_back_shows_as_drift(aws):
    mgr = aws.manager()
    deploy(mgr)
    deploy(mgr, name="other")
    aws.client("lambda").delete_function(FunctionName="weave-demo")
    listing = mgr.list("aws")
    by_name = {d.name: d for d in listing.deployments}
    assert by_name["demo"].drift == "missing"
    assert by_name["other"].drift is None and by_name["other"].status.value == "active"
    st = mgr.status("demo", "aws")
    assert st.drift == "missing" and st.status.value == "failed"
    # undeploy still cleans up what is left (role, inventory)
    mgr.destroy("demo", "aws")
    assert aws.counts()["roles"] == 1


def test_unrecorded_function_shows_as_unrecorded(aws, tmp_path):
    mgr = aws.manager()
    deploy(mgr, name="stray")
    mgr.inventory.delete("aws", "stray")
    by_name = {d.name: d for d in mgr.list("aws").deployments}
    assert by_name["stray"].drift == "unrecorded"


def test_two_hundred_deployments_listed_with_bulk_calls(aws):
    lam, iam = aws.client("lambda"), aws.client("iam")
    role = iam.create_role(RoleName="r", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    from weave_nb.core.artifact import zip_bytes

    code = zip_bytes({"x.py": b"x = 1\n"})
    mgr = aws.manager()
    for i in range(200):
        name = f"d{i:03d}"
        lam.create_function(FunctionName=f"weave-{name}", Runtime="python3.12", Role=role, Handler="x.h",
                            Code={"ZipFile": code}, Tags={"weave-nb:managed": "true", "weave-nb:name": name})
        mgr.inventory.save("aws", name, status="active", region="us-east-1", details={"function": f"weave-{name}"})
    for i in range(5):  # not ours
        lam.create_function(FunctionName=f"other-{i}", Runtime="python3.12", Role=role, Handler="x.h", Code={"ZipFile": code})
    aws.proxy.clear()
    listing = mgr.list("aws")
    names = sorted(d.name for d in listing.deployments)
    assert names == [f"d{i:03d}" for i in range(200)]
    assert all(d.drift is None and d.status.value == "active" for d in listing.deployments)
    ops = [c for c in aws.proxy.calls]
    assert not any("/tags/" in c.path for c in ops), "no per-function tag lookups"
    assert len(ops) <= 10


def _stubbed_client(pages_fn, pages_tags):
    import boto3
    from botocore.stub import Stubber

    from weave_nb.providers.aws.client import AwsClient, Session

    kw = dict(region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b")
    lam, tag = boto3.client("lambda", **kw), boto3.client("resourcegroupstaggingapi", **kw)
    s1, s2 = Stubber(lam), Stubber(tag)
    for expected, page in pages_fn:
        s1.add_response("list_functions", page, expected)
    for expected, page in pages_tags:
        s2.add_response("get_resources", page, expected)
    s1.activate(), s2.activate()
    client = AwsClient(Session(boto=None, region="us-east-1"))
    client._clients.update({"lambda": lam, "resourcegroupstaggingapi": tag})
    return client, (s1, s2)


def _fn(name):
    return {"FunctionName": name, "FunctionArn": f"arn:aws:lambda:us-east-1:123456789012:function:{name}", "State": "Active"}


def test_listing_follows_next_marker_and_pagination_token():
    from weave_nb.core.auth import AuthenticationManager
    from weave_nb.providers.aws.provider import AwsProvider

    tags = lambda n: [{"Key": "weave-nb:managed", "Value": "true"}, {"Key": "weave-nb:name", "Value": n}]  # noqa: E731
    arn = lambda n: f"arn:aws:lambda:us-east-1:123456789012:function:weave-{n}"  # noqa: E731
    filt = {"TagFilters": [{"Key": "weave-nb:managed", "Values": ["true"]}], "ResourceTypeFilters": ["lambda:function"], "ResourcesPerPage": 100}
    client, stubs = _stubbed_client(
        [({}, {"Functions": [_fn("weave-a"), _fn("weave-b")], "NextMarker": "m1"}),
         ({"Marker": "m1"}, {"Functions": [_fn("weave-c"), _fn("plain")], "NextMarker": "m2"}),
         ({"Marker": "m2"}, {"Functions": [_fn("weave-d")]})],
        [(filt, {"ResourceTagMappingList": [{"ResourceARN": arn("a"), "Tags": tags("a")}], "PaginationToken": "t1"}),
         ({**filt, "PaginationToken": "t1"}, {"ResourceTagMappingList": [{"ResourceARN": arn("c"), "Tags": tags("c")},
                                                                         {"ResourceARN": arn("d"), "Tags": tags("d")}], "PaginationToken": ""})],
    )
    found = AwsProvider(AuthenticationManager(environ={}))._list_region(client, [])
    assert sorted(d.name for d in found) == ["a", "c", "d"]
    for stub in stubs:
        stub.assert_no_pending_responses()


def test_listing_falls_back_to_list_tags_when_tagging_api_is_denied():
    from weave_nb.core.auth import AuthenticationManager
    from weave_nb.providers.aws.provider import AwsProvider

    client, (s1, s2) = _stubbed_client([({}, {"Functions": [_fn("weave-a"), _fn("plain")]})], [])
    s2.add_client_error("get_resources", service_error_code="AccessDeniedException", http_status_code=403)
    lam = client._clients["lambda"]
    s1.add_response("list_tags", {"Tags": {"weave-nb:managed": "true", "weave-nb:name": "a"}},
                    {"Resource": "arn:aws:lambda:us-east-1:123456789012:function:weave-a"})
    found = AwsProvider(AuthenticationManager(environ={}))._list_region(client, [])
    assert [d.name for d in found] == ["a"]
    s1.assert_no_pending_responses()
    assert lam is client._clients["lambda"]


def test_local_invoke_runs_the_exact_zip(aws):
    mgr = aws.manager()
    deploy(mgr)
    result = mgr.invoke("demo", "aws", {"weave": "hello", "input": "Ada"}, local=True)
    assert result["weave"] == "hello"
    assert "greeter" in json.dumps(result)
    zips = list((aws.home / "aws" / "demo").glob("*.zip"))
    assert len(zips) == 1
    with pytest.raises(Exception, match="weave"):
        mgr.invoke("demo", "aws", {"weave": "nope", "input": "x"}, local=True)


class _Capture(BaseHTTPRequestHandler):
    seen: list = []

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Capture.seen.append((dict(self.headers), body))
        out = json.dumps({"ok": True}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *a):
        pass


@pytest.mark.parametrize("endpoint, service", [("url", "lambda"), ("api", "execute-api")])
def test_remote_invoke_of_a_private_endpoint_is_signed_with_sigv4(aws, endpoint, service):
    mgr = aws.manager()
    deploy(mgr, options={"endpoint": endpoint})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Capture)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/"
        mgr.inventory.save("aws", "demo", endpoint=url)
        _Capture.seen.clear()
        assert mgr.invoke("demo", "aws", {"input": "hi"}) == {"ok": True}
        headers, body = _Capture.seen[0]
        auth = {k.lower(): v for k, v in headers.items()}["authorization"]
        assert auth.startswith("AWS4-HMAC-SHA256 Credential=testing/")
        assert f"/us-east-1/{service}/aws4_request" in auth
        assert json.loads(body) == {"input": "hi"}
        # a public endpoint is called without a signature
        mgr.inventory.save("aws", "demo", details={"public": True})
        _Capture.seen.clear()
        mgr.invoke("demo", "aws", {"input": "hi"})
        assert "authorization" not in {k.lower() for k in _Capture.seen[0][0]}
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_cli_end_to_end(aws, tmp_path):
    from weave_nb.frontends.cli import main

    weave_file = tmp_path / "hello.weave.yaml"
    weave_file.write_text(HELLO)
    out, err = io.StringIO(), io.StringIO()
    assert main(["deploy", "--provider", "aws", "--name", "cli", "--config", str(weave_file), "--memory", "256"], out=out, err=err) == 0, err.getvalue()
    assert "note:" in out.getvalue() and "SigV4" in out.getvalue()
    out = io.StringIO()
    assert main(["deployments", "--provider", "aws"], out=out, err=err) == 0
    assert "cli" in out.getvalue() and "active" in out.getvalue()
    out = io.StringIO()
    assert main(["invoke", "cli", "--provider", "aws", "--local", "--input", "Ada"], out=out, err=err) == 0, err.getvalue()
    assert json.loads(out.getvalue())["weave"] == "hello"
    out = io.StringIO()
    assert main(["deploy", "--provider", "aws", "--name", "cli", "--config", str(weave_file), "--memory", "99999"], out=out, err=err) == 2
    assert "memory 99999 MB" in err.getvalue()
    assert main(["undeploy", "cli", "--provider", "aws", "--force"], out=io.StringIO(), err=err) == 0
    assert aws.counts() == {"functions": 0, "roles": 0, "apis": 0}


def _moto_api(aws, path, body):
    import urllib.request

    req = urllib.request.Request(f"{aws.moto.url}/moto-api/{path}", data=json.dumps(body).encode(), method="POST",
                                 headers={"content-type": "application/json"})
    urllib.request.urlopen(req, timeout=30).read()


@pytest.fixture
def lambda_simple(aws):
    """moto's Lambda backend that answers Invoke without running code (it echoes the event or a queued answer)."""
    _moto_api(aws, "config", {"lambda": {"use_docker": False}})
    try:
        yield lambda *answers: _moto_api(aws, "static/lambda-simple/response", {"results": [json.dumps(a) for a in answers]})
    finally:
        _moto_api(aws, "config", {"lambda": {"use_docker": True}})


def test_invoke_without_an_endpoint_uses_lambda_invoke_on_the_live_alias(aws, lambda_simple):
    import base64

    from weave_nb.core.errors import WeaveError

    mgr = aws.manager()
    info = deploy(mgr, options={"endpoint": "none"})
    assert info.endpoint is None
    aws.proxy.clear()
    payload = {"weave": "hello", "input": "Ada"}
    # with nothing queued, moto answers with the event it was sent: its body comes back decoded
    assert mgr.invoke("demo", "aws", payload) == payload
    sent = [c for c in aws.proxy.calls if c.method == "POST" and "/functions/weave-demo/invocations" in c.path]
    assert len(sent) == 1 and "Qualifier=live" in sent[0].query.split("&")
    event = json.loads(sent[0].body)
    assert event["version"] == "2.0" and event["requestContext"]["http"]["method"] == "POST"
    assert json.loads(event["body"]) == payload
    # the function's HTTP answer is decoded as Lambda returns it: base64 bodies, and non-2xx as an error
    lambda_simple({"statusCode": 200, "isBase64Encoded": True, "body": base64.b64encode(b'{"answer": 42}').decode()},
                  {"statusCode": 400, "body": json.dumps({"error": "unknown weave 'nope'"})})
    assert mgr.invoke("demo", "aws", {"weave": "hello", "input": "x"}) == {"answer": 42}
    with pytest.raises(WeaveError, match="answered 400: unknown weave 'nope'"):
        mgr.invoke("demo", "aws", {"weave": "nope", "input": "x"})
