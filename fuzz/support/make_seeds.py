#!/usr/bin/env python3
"""Writes the seed corpora of rest_fuzz, mqtt_session_fuzz and websocket_fuzz (fuzz/*/corpus/).

The targets read their input with fuzz/support/input_reader.hpp: a choice is one byte (two for
ranges wider than 255, four above 65535), taken modulo the range's size; a string runs to a NUL;
the rest of the input is the body. Each seed below lists those choices in the order the target
reads them (see the target's source). Run from the repository root: python3 fuzz/support/make_seeds.py
"""
import os
import struct

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def b(*vals):
    return bytes(vals)


def s(text):
    return text.encode() + b"\0"


def u16(v):
    return struct.pack(">H", v)


def write(target, name, data):
    d = os.path.join(ROOT, target, "corpus")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---- rest_fuzz ------------------------------------------------------------------------------
GET, PUT, PATCH, POST, DELETE = range(5)
# templates
T = dict(devices=0, device=1, modules=2, module=3, twin=4, module_twin=5, reg_stats=6, svc_stats=7, methods=8,
         module_methods=9, query=10, purge=11, module_purge=12, receive=13, module_receive=14, settle=15,
         abandon=16, events=17, module_events=18, raw=19)
# auth: 0 iothubowner 1 service 2 registryRead 3 registryReadWrite 4 device-policy 5 identity primary
# 6 identity primary 7 identity secondary 8 expired 9 raw 10 trailing junk 11 none
# if-match: 0 none 1 "*" 2 current etag 4 raw; content-type: 0 json 1 raw 2 iothub batch 3 none


def rest(method, dev, mod, tmpl, body=b"", auth=0, if_match=0, query=5, ctype=0, lock_from_last=True,
         headers=(), behaviour=0, status=200, max_items=None, raw_target=None, dev_raw=None, raw_query=None,
         top="5", raw_if_match="junk", raw_ctype="text/plain"):
    out = b(method)
    out += b(7) + s(dev_raw) if dev_raw is not None else b(dev)
    out += b(mod)
    out += b(1) if lock_from_last else b(0) + s("bogus-lock")
    out += b(tmpl)
    if tmpl == T["raw"]:
        out += s(raw_target)
    out += b(query)
    if query == 2:
        out += s(top)
    if query == 4:
        out += s(raw_query)
    out += b(auth)
    out += b(if_match)
    if if_match == 4:
        out += s(raw_if_match)
    out += b(ctype)
    if ctype == 1:
        out += s(raw_ctype)
    out += b(0)  # no Content-Encoding
    out += b(1) + s(max_items) if max_items is not None else b(0)
    out += b(0)  # no continuation
    out += b(len(headers))
    for k, v in headers:
        out += s(k) + s(v)
    out += b(behaviour) + u16((status + 1) % 602)
    return out + body


def rest_seeds():
    # ids: devices 0 dev1 1 dev2 2 dev3(disabled) 3 newdev 4 "dev%201" 5 missing; modules 0 mod1 1 mod2 2 newmod
    w = lambda n, d: write("rest", n, d)
    w("get_device", rest(GET, 0, 0, T["device"]))
    w("create_device", rest(PUT, 3, 0, T["device"], b'{"deviceId":"newdev","status":"enabled"}'))
    w("update_device_if_match", rest(PUT, 1, 0, T["device"],
        b'{"deviceId":"dev2","status":"disabled","authentication":{"type":"sas","symmetricKey":'
        b'{"primaryKey":"","secondaryKey":""}}}', if_match=2))
    w("patch_twin", rest(PATCH, 0, 0, T["twin"], b'{"tags":{"a":1},"properties":{"desired":{"b":{"c":null}}}}',
                         if_match=2))
    w("replace_module_twin", rest(PUT, 0, 0, T["module_twin"],
        b'{"tags":{"x":"y"},"properties":{"desired":{"k":[1,2,3]}}}', if_match=1))
    w("list_modules", rest(GET, 0, 0, T["modules"], auth=2))
    w("create_module", rest(PUT, 0, 2, T["module"], b'{"moduleId":"newmod","deviceId":"dev1"}'))
    w("delete_device", rest(DELETE, 1, 0, T["device"], if_match=1))
    w("bulk", rest(POST, 0, 0, T["devices"],
        b'[{"id":"bulk1","importMode":"create"},{"id":"dev1","importMode":"delete","eTag":"*"},'
        b'{"id":"dev2","importMode":"updateIfMatchETag","eTag":"MQ==","status":"enabled"}]'))
    w("query", rest(POST, 0, 0, T["query"], b'{"query":"SELECT * FROM devices WHERE tags.site = \'a\'"}',
                    max_items="1", auth=1))
    w("query_modules", rest(POST, 0, 0, T["query"],
        b'{"query":"SELECT deviceId, COUNT() AS n FROM devices.modules GROUP BY deviceId"}'))
    w("method", rest(POST, 0, 0, T["methods"], b'{"methodName":"reboot","responseTimeoutInSeconds":5,"payload":{"x":1}}',
                     auth=1, behaviour=2))
    w("method_gone", rest(POST, 0, 0, T["methods"], b'{"methodName":"reboot","payload":null}', behaviour=1))
    w("module_method_offline", rest(POST, 0, 0, T["module_methods"],
        b'{"methodName":"m","connectTimeoutInSeconds":5,"responseTimeoutInSeconds":5}', behaviour=3, status=404))
    w("method_offline_now", rest(POST, 1, 0, T["methods"], b'{"methodName":"m"}', behaviour=3))
    w("purge", rest(DELETE, 0, 0, T["purge"]))
    w("module_purge", rest(DELETE, 0, 0, T["module_purge"], auth=3))
    w("receive", rest(GET, 0, 0, T["receive"], auth=5))
    w("module_receive", rest(GET, 0, 0, T["module_receive"], auth=7))
    w("complete", rest(DELETE, 0, 0, T["settle"], auth=5, if_match=4))
    w("reject", rest(DELETE, 0, 0, T["settle"], auth=5, query=3))
    w("abandon", rest(POST, 0, 0, T["abandon"], auth=4))
    w("telemetry", rest(POST, 0, 0, T["events"], b"hello", auth=5, ctype=1,
                        headers=[("app-color", "blue"), ("messageid", "m-1")]))
    w("telemetry_batch", rest(POST, 0, 0, T["module_events"], b'[{"body":"aGk=","properties":{"a":"b"}}]',
                              auth=6, ctype=2))
    w("registry_statistics", rest(GET, 0, 0, T["reg_stats"], auth=2))
    w("service_statistics", rest(GET, 0, 0, T["svc_stats"], auth=1))
    w("list_top", rest(GET, 0, 0, T["devices"], query=2) )
    w("no_auth", rest(GET, 0, 0, T["device"], auth=11))
    w("expired", rest(GET, 0, 0, T["twin"], auth=8))
    w("no_api_version", rest(GET, 0, 0, T["device"], query=0))
    w("raw_target", rest(GET, 0, 0, T["raw"], raw_target="/devices/dev%201/modules/%zz", query=4,
                         raw_query="api-version=2021-04-12&top=abc"))
    w("escaped_id", rest(PUT, 0, 0, T["device"], b'{"status":"enabled"}', dev_raw="dev%201"))
    w("wrong_method", rest(PATCH, 0, 0, T["device"], b'{}'))


# ---- mqtt_session_fuzz ----------------------------------------------------------------------
def connect(who=0, user=0, how=0, clean=1, keep_alive=60, level3=False, cut=0):
    out = b(0, who) + b(user)
    if user == 4:
        out += b(1)
    out += b(how) + b(clean) + u16(keep_alive) + b(0 if level3 else 1)
    return out + b(cut)


def sub(*filters, cut=0):  # filters: (index, qos)
    out = b(2, len(filters) - 1)
    for f, q in filters:
        out += b(f) + b(q)
    return out + b(cut)


def pub(kind, rid=1, qos=1, json_payload=True, status=None, cut=0, raw=None):
    out = b(3, rid, kind)
    if kind == 3:
        out += s("v")
    if kind == 5:
        out += u16(status - 100)
    if kind == 6 or kind == 8:
        out += s(raw or "x")
    out += b(qos) + (b(1) if json_payload else b(0) + s("raw-payload"))
    return out + b(cut)


def mqtt_seeds():
    w = lambda n, d: write("mqtt_session", n, d)
    # filters: 0 twin res 1 desired 2 methods 3 own C2D 4 other's C2D 5 '#' 6 devicebound with property
    # publish kinds: 0 twin GET 1 reported 2 own telemetry 3 telemetry+bag 4 other's telemetry 5 method res
    # actions: 10 desired (flag mine, u8) 11 c2d (flag mine) 12 method (rid, flag payload) 13 rotate keys (flag mine)
    w("twin_round_trip", b(0, 0) + connect() + sub((0, 1), (1, 1)) + pub(0) + pub(1, rid=2) + b(6, 0) + b(8, 0))
    w("twin_split", b(0, 0) + connect(cut=100) + sub((0, 0), cut=128) + pub(0, qos=0, cut=7) + pub(1, cut=200))
    w("c2d", b(0, 0) + connect() + sub((3, 1)) + b(11, 1) + b(11, 0) + b(5, 1, 0) + b(5, 2, 0) + b(7, 3, 0))
    w("c2d_qos0_module", b(1, 0) + connect() + sub((3, 0), (4, 1)) + b(11, 1) + b(11, 0))
    w("methods", b(0, 0) + connect() + sub((2, 0)) + b(12, 3, 1) + pub(5, rid=3, status=200) + pub(6, raw="zz"))
    w("desired", b(1, 1) + connect() + sub((1, 0)) + b(10, 1, 7) + b(10, 0, 8) + pub(0) + b(10, 1, 9))
    w("telemetry", b(2, 0) + connect() + pub(2) + pub(3, qos=0) + pub(4))
    w("refused_then_more", b(0, 0) + connect(how=6) + sub((0, 1)) + pub(0))
    w("expired_token", b(0, 1) + connect(how=3) + b(6, 0))
    w("policy_token", b(1, 0) + connect(how=4, clean=0) + sub((0, 1), (2, 1)) + b(8, 0)
      + connect(how=4, clean=0) + pub(0))
    w("other_identity", b(0, 0) + connect(who=5) + pub(0))
    w("level3", b(0, 0) + connect(level3=True))
    w("rotate_keys", b(0, 0) + connect(how=2) + sub((0, 1)) + b(13, 1) + pub(0))
    w("garbage_first", b(0, 0) + b(9, 6) + b"\x30\x05\x00\x01ab" + connect())
    w("persistent_session", b(2, 0) + connect(clean=0) + sub((0, 1), (1, 1), (3, 1)) + b(8, 0))


# ---- websocket_fuzz -------------------------------------------------------------------------
def upgrade(target=0, protocol=0, good_key=True, good_version=True, upgrade_header=True, extra=(), extensions=False):
    out = b(1, target) + b(protocol)
    out += b(1) if good_key else b(0) + s("short")
    out += b(1) if good_version else b(0) + s("8")
    out += b(1 if upgrade_header else 0)
    out += b(1)  # Connection: Upgrade
    if protocol == 6:
        out += b(1)
    out += b(len(extra))
    for k, v in extra:
        out += s(k) + s(v)
    return out + b(1 if extensions else 0) + b(1)  # then: reads of whole segments (not tiny)


def frame(op_index, payload=b"", fin=True, masked=True, close_code=None, lenform=0, claimed=None, width=0, key=0x01020304):
    # op_index: 0 cont 1 text 2 binary 3 close 4 ping 5 pong 6..8 reserved
    out = b(1 if fin else 0) + b(1)  # fin; rsv: none
    out += b(op_index) + b(1 if masked else 0)
    if op_index == 3:
        if close_code is None:
            out += b(0)
        else:
            out += b(1) + (b(1) if close_code == 1000 else b(0) + u16(close_code))
    control = op_index in (3, 4, 5, 7, 8)
    out += (b(len(payload)) if control else u16(len(payload))) + payload
    out += b(lenform)
    if lenform == 8:
        out += struct.pack(">Q", claimed)
    elif lenform == 9:
        out += struct.pack(">I", claimed)
    n = len(payload) + (2 if op_index == 3 and close_code is not None else 0)
    if lenform == 8:
        n = claimed
    elif lenform == 9:
        n += 1 + claimed % (1 << 20)
    if n < 126:
        out += b(1 if width == 0 else 0)
        if width != 0:
            out += b(1 if width == 2 else 0)
    elif n <= 0xffff:
        out += b(1 if width == 2 else 0)
    if masked:
        out += struct.pack(">I", key)
    return out


def websocket_seeds():
    w = lambda n, d: write("websocket", n, d)
    connect_pkt = b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00"
    w("mqtt_binary", upgrade() + frame(2, connect_pkt) + frame(3, close_code=1000))
    w("amqp_header", upgrade(protocol=1) + frame(2, b"AMQP\x03\x01\x00\x00"))
    w("both_listed", upgrade(protocol=3) + frame(2, b"AMQP\x00\x01\x00\x00"))
    w("tiny_reads", upgrade()[:-1] + b(0) + frame(2, connect_pkt) + frame(4, b"ping") + frame(3, close_code=1000))
    w("fragmented", upgrade() + frame(2, b"\x10\x0c\x00", fin=False) + frame(4, b"ping") + frame(0, b"\x04MQTT", fin=False)
      + frame(0, b"\x04\x02\x00\x3c\x00\x00"))
    w("unmasked", upgrade() + frame(2, b"abc", masked=False))
    w("text_frame", upgrade() + frame(1, b"not binary"))
    w("huge_length", upgrade() + frame(2, b"xy", lenform=8, claimed=0x7fffffffffffffff))
    w("length_beyond_input", upgrade() + frame(2, b"xy", lenform=9, claimed=600000))
    w("medium_16bit", upgrade() + frame(2, bytes(range(256)) * 2, width=2))
    w("pong_close_bad_code", upgrade() + frame(5, b"p") + frame(3, close_code=999))
    w("reserved_opcode", upgrade() + frame(6, b"?"))
    w("wrong_path", b(1, 3) + s("/devices") + b(0) + b(1, 1, 1, 1, 0, 0))
    w("unserved_protocol", upgrade(protocol=5))
    w("bad_key", upgrade(good_key=False) + frame(2, b"a"))
    w("no_upgrade_header", upgrade(upgrade_header=False))
    w("deflate_offered", upgrade(extensions=True, extra=[("Origin", "https://x")]) + frame(2, connect_pkt))
    w("raw_request", b(0) + s("GET /$iothub/websocket HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: upgrade\r\n"
                              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                              "Sec-WebSocket-Protocol: mqtt\r\n\r\n"))


if __name__ == "__main__":
    rest_seeds()
    mqtt_seeds()
    websocket_seeds()
