"""A golden corpus: documents with the digest and the records this adapter must produce for them.

The digest is kept in the ledger and compared with every later copy of a submission, and the records
are the consumers' contract, so neither may drift between releases or runtimes (a different IP or
timestamp text after an upgrade would turn unfinished submissions into conflicts). Any change to
normalisation, escaping or the record layout fails here first; a deliberate one (a new
``schema_version``) updates these constants in the same change.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from telemetry_adapter.config import Limits
from telemetry_adapter.records import build_records
from telemetry_adapter.submission import parse_submission

PROCESSING_TIMESTAMP = "2026-11-28T12:22:05.123456Z"
SCHEMA = Path(__file__).resolve().parents[2] / "schemas" / "event-record.schema.json"


@dataclass(frozen=True)
class GoldenCase:
    """A submission body (raw JSON), its content digest (hex) and its records' exact bytes (UTF-8 text)."""

    name: str
    body: str
    digest: str
    records: tuple[str, ...]


CORPUS = (
    GoldenCase(
        name="the documented example",
        body=(
            '{"submission_id": "5d9f1c2e-8a3b-4c1d-9e2f-0a1b2c3d4e5f", "device_id": "154ef306-c788-4'
            '934-9489-118173e4ea1a", "time_created": "2024-03-05T03:49:51.123456", "events": {"new_p'
            'rocess": [{"cmdl": "notepad.exe", "user": "john"}], "network_connection": [{"source_ip"'
            ': "192.168.0.1", "destination_ip": "142.250.74.110", "destination_port": 443}]}}'
        ),
        digest="2ac6da08cd520ca3e7b790235a1bd9a60a59d19c931d2af03930fe5122b98253",
        records=(
            (
                '{"schema_version":1,"id":"7e90347c-fbea-5c5d-9880-d54d1185a609","event_type":"new_proce'
                'ss","device_id":"154ef306-c788-4934-9489-118173e4ea1a","submission_id":"5d9f1c2e-8a3b-4'
                'c1d-9e2f-0a1b2c3d4e5f","time_created":"2024-03-05T03:49:51.123456","processing_timestam'
                'p":"2026-11-28T12:22:05.123456Z","sequence":0,"event_details":{"cmdl":"notepad.exe","us'
                'er":"john"}}'
            ),
            (
                '{"schema_version":1,"id":"d942a2b5-ddf9-5eb8-b00f-142f70101d8d","event_type":"network_c'
                'onnection","device_id":"154ef306-c788-4934-9489-118173e4ea1a","submission_id":"5d9f1c2e'
                '-8a3b-4c1d-9e2f-0a1b2c3d4e5f","time_created":"2024-03-05T03:49:51.123456","processing_t'
                'imestamp":"2026-11-28T12:22:05.123456Z","sequence":1,"event_details":{"source_ip":"192.'
                '168.0.1","destination_ip":"142.250.74.110","destination_port":443}}'
            ),
        ),
    ),
    GoldenCase(
        name="upper-case ids, an offset, a space for T, unknown fields",
        body=(
            '{"submission_id": "A1B2C3D4-E5F6-4711-8899-AABBCCDDEEFF", "device_id": "0F0E0D0C-0B0A-4'
            '909-8807-060504030201", "time_created": "2024-03-05 03:49:51+02:00", "firmware": {"vers'
            'ion": [1, 2, 3]}, "events": {"new_process": [{"cmdl": "svchost.exe -k netsvcs", "user":'
            ' "SYSTEM", "pid": 4242}]}}'
        ),
        digest="fe3d89e48463f7574ec1f1c3ff0849f7beaf7e8a5dab2c7271ae7c17ceffdee7",
        records=(
            (
                '{"schema_version":1,"id":"17216ba2-cb7e-588d-a38e-55d398e7a3e2","event_type":"new_proce'
                'ss","device_id":"0f0e0d0c-0b0a-4909-8807-060504030201","submission_id":"a1b2c3d4-e5f6-4'
                '711-8899-aabbccddeeff","time_created":"2024-03-05T03:49:51+02:00","processing_timestamp'
                '":"2026-11-28T12:22:05.123456Z","sequence":0,"event_details":{"cmdl":"svchost.exe -k ne'
                'tsvcs","user":"SYSTEM"}}'
            ),
        ),
    ),
    GoldenCase(
        name="IPv6 spellings, IPv4-mapped and embedded forms, ports at both ends",
        body=(
            '{"submission_id": "0f8e4a52-3c1d-4b7e-9a6f-2d5c8b1e7a90", "device_id": "154ef306-c788-4'
            '934-9489-118173e4ea1a", "time_created": "2024-03-05T03:49:51Z", "events": {"network_con'
            'nection": [{"source_ip": "2001:0DB8:0000:0000:0000:0000:0000:0001", "destination_ip": "'
            '::ffff:1.2.3.4", "destination_port": 0}, {"source_ip": "::1.2.3.4", "destination_ip": "'
            '64:ff9b::192.0.2.33", "destination_port": 65535}, {"source_ip": "fe80::1", "destination'
            '_ip": "2001:db8:0:0:1:0:0:1", "destination_port": 53}, {"source_ip": "::", "destination'
            '_ip": "0.0.0.0", "destination_port": 8443}]}}'
        ),
        digest="a07aecd1d7ac50d1a510a4b0c478e3dd54c40ca62d0b0305c8b5f7e9c857df65",
        records=(
            (
                '{"schema_version":1,"id":"265510de-fbb0-5b73-a928-39206ab2f55f","event_type":"network_c'
                'onnection","device_id":"154ef306-c788-4934-9489-118173e4ea1a","submission_id":"0f8e4a52'
                '-3c1d-4b7e-9a6f-2d5c8b1e7a90","time_created":"2024-03-05T03:49:51+00:00","processing_ti'
                'mestamp":"2026-11-28T12:22:05.123456Z","sequence":0,"event_details":{"source_ip":"2001:'
                'db8::1","destination_ip":"::ffff:102:304","destination_port":0}}'
            ),
            (
                '{"schema_version":1,"id":"cd36c88c-381e-5539-ba17-40fe74824b6b","event_type":"network_c'
                'onnection","device_id":"154ef306-c788-4934-9489-118173e4ea1a","submission_id":"0f8e4a52'
                '-3c1d-4b7e-9a6f-2d5c8b1e7a90","time_created":"2024-03-05T03:49:51+00:00","processing_ti'
                'mestamp":"2026-11-28T12:22:05.123456Z","sequence":1,"event_details":{"source_ip":"::102'
                ':304","destination_ip":"64:ff9b::c000:221","destination_port":65535}}'
            ),
            (
                '{"schema_version":1,"id":"620a6489-9da2-506b-911c-0e7b0a21b345","event_type":"network_c'
                'onnection","device_id":"154ef306-c788-4934-9489-118173e4ea1a","submission_id":"0f8e4a52'
                '-3c1d-4b7e-9a6f-2d5c8b1e7a90","time_created":"2024-03-05T03:49:51+00:00","processing_ti'
                'mestamp":"2026-11-28T12:22:05.123456Z","sequence":2,"event_details":{"source_ip":"fe80:'
                ':1","destination_ip":"2001:db8::1:0:0:1","destination_port":53}}'
            ),
            (
                '{"schema_version":1,"id":"0b2e0acd-14f9-5295-8479-cbbf2b80aef4","event_type":"network_c'
                'onnection","device_id":"154ef306-c788-4934-9489-118173e4ea1a","submission_id":"0f8e4a52'
                '-3c1d-4b7e-9a6f-2d5c8b1e7a90","time_created":"2024-03-05T03:49:51+00:00","processing_ti'
                'mestamp":"2026-11-28T12:22:05.123456Z","sequence":3,"event_details":{"source_ip":"::","'
                'destination_ip":"0.0.0.0","destination_port":8443}}'
            ),
        ),
    ),
    GoldenCase(
        name="strings that need escaping or are not ASCII",
        body=(
            '{"submission_id": "7c9e6679-7425-40de-944b-e07fc1f90ae7", "device_id": "9b2f4e1a-6d3c-4'
            'a8b-b5e7-1c0d2f3a4b5c", "time_created": "2024-03-05T03:49:51.000000-05:30", "events": {'
            '"new_process": [{"cmdl": "C:\\\\Program Files\\\\App\\\\app.exe \\"quoted\\"\\targ\\nli'
            'ne\\rcr", "user": "Mária"}, {"cmdl": "/usr/bin/中文 --emoji=😀 --sep=\u2028 --slash=/", "u'
            'ser": "éè \x85"}]}}'
        ),
        digest="b69ba27c3da32c806edb36d378d72048b51c23d6e0ece49210d6827d6a0e629c",
        records=(
            (
                '{"schema_version":1,"id":"9633fb53-2467-5601-90dd-75ee949dd2c2","event_type":"new_proce'
                'ss","device_id":"9b2f4e1a-6d3c-4a8b-b5e7-1c0d2f3a4b5c","submission_id":"7c9e6679-7425-4'
                '0de-944b-e07fc1f90ae7","time_created":"2024-03-05T03:49:51-05:30","processing_timestamp'
                '":"2026-11-28T12:22:05.123456Z","sequence":0,"event_details":{"cmdl":"C:\\\\Program Fil'
                'es\\\\App\\\\app.exe \\"quoted\\"\\targ\\nline\\rcr","user":"Mária"}}'
            ),
            (
                '{"schema_version":1,"id":"91c03270-4c86-5911-af4c-5e71db60f0a5","event_type":"new_proce'
                'ss","device_id":"9b2f4e1a-6d3c-4a8b-b5e7-1c0d2f3a4b5c","submission_id":"7c9e6679-7425-4'
                '0de-944b-e07fc1f90ae7","time_created":"2024-03-05T03:49:51-05:30","processing_timestamp'
                '":"2026-11-28T12:22:05.123456Z","sequence":1,"event_details":{"cmdl":"/usr/bin/中文 --emo'
                'ji=😀 --sep=\u2028 --slash=/","user":"éè \x85"}}'
            ),
        ),
    ),
    GoldenCase(
        name="event types in document order, network first",
        body=(
            '{"submission_id": "3f2504e0-4f89-41d3-9a0c-0305e82c3301", "device_id": "154ef306-c788-4'
            '934-9489-118173e4ea1a", "time_created": "2026-01-01T00:00:00.000001+00:00", "events": {'
            '"network_connection": [{"source_ip": "10.0.0.1", "destination_ip": "8.8.8.8", "destinat'
            'ion_port": 53}], "new_process": [{"cmdl": "a", "user": "b"}, {"cmdl": "c", "user": "d"}'
            "]}}"
        ),
        digest="bbd44f74cb4c945943c85f2f37edfa0f6200f7b50808b12010f72d9ea52b762e",
        records=(
            (
                '{"schema_version":1,"id":"6e2d1e2e-9243-50be-93b3-fefda6b2d51c","event_type":"network_c'
                'onnection","device_id":"154ef306-c788-4934-9489-118173e4ea1a","submission_id":"3f2504e0'
                '-4f89-41d3-9a0c-0305e82c3301","time_created":"2026-01-01T00:00:00.000001+00:00","proces'
                'sing_timestamp":"2026-11-28T12:22:05.123456Z","sequence":0,"event_details":{"source_ip"'
                ':"10.0.0.1","destination_ip":"8.8.8.8","destination_port":53}}'
            ),
            (
                '{"schema_version":1,"id":"8281cb0d-a2dd-5ded-9604-145240968c69","event_type":"new_proce'
                'ss","device_id":"154ef306-c788-4934-9489-118173e4ea1a","submission_id":"3f2504e0-4f89-4'
                '1d3-9a0c-0305e82c3301","time_created":"2026-01-01T00:00:00.000001+00:00","processing_ti'
                'mestamp":"2026-11-28T12:22:05.123456Z","sequence":1,"event_details":{"cmdl":"a","user":'
                '"b"}}'
            ),
            (
                '{"schema_version":1,"id":"988970e2-9e16-5dc9-b53e-3ecb60b98459","event_type":"new_proce'
                'ss","device_id":"154ef306-c788-4934-9489-118173e4ea1a","submission_id":"3f2504e0-4f89-4'
                '1d3-9a0c-0305e82c3301","time_created":"2026-01-01T00:00:00.000001+00:00","processing_ti'
                'mestamp":"2026-11-28T12:22:05.123456Z","sequence":2,"event_details":{"cmdl":"c","user":'
                '"d"}}'
            ),
        ),
    ),
    GoldenCase(
        name="no events at all",
        body=(
            '{"submission_id": "e3b0c442-98fc-4c14-9afb-f4c8996fb924", "device_id": "154ef306-c788-4'
            '934-9489-118173e4ea1a", "time_created": "2024-02-29T23:59:59", "events": {"new_process"'
            ': [], "network_connection": null}}'
        ),
        digest="cf02028193e2afba7f8624aebdf5fad32804fa6d55982c238925290c2330d6d0",
        records=(),
    ),
)


@pytest.mark.parametrize("case", CORPUS, ids=[case.name for case in CORPUS])
def test_digest_and_records_are_exactly_the_golden_ones(case: GoldenCase) -> None:
    submission = parse_submission(case.body, Limits())
    assert submission.digest.hex() == case.digest
    records = build_records(submission, 0, PROCESSING_TIMESTAMP)
    assert tuple(record.data.decode("utf-8") for record in records) == case.records


@pytest.mark.parametrize("case", CORPUS, ids=[case.name for case in CORPUS])
def test_the_base64_body_is_the_same_submission(case: GoldenCase) -> None:
    encoded = base64.b64encode(case.body.encode("utf-8")).decode("ascii")
    assert parse_submission(encoded, Limits()) == parse_submission(case.body, Limits())


def test_golden_records_match_the_published_schema() -> None:
    schema = json.loads(SCHEMA.read_text())
    validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    records = [json.loads(record) for case in CORPUS for record in case.records]
    assert records
    for record in records:
        validator.validate(record)
    assert {record["schema_version"] for record in records} == {1}
