#!/usr/bin/env python3
"""Writes the seed corpus for mqtt_decoder_fuzz: raw MQTT 3.1.1 packets shaped like those the Azure
IoT SDKs and the hub exchange (spec section 5). Written by hand, not with the codec under test.
Run from any directory: python3 fuzz/mqtt/make_corpus.py"""
import os
import struct

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def s16(b):
    if isinstance(b, str):
        b = b.encode()
    return struct.pack(">H", len(b)) + b


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def pkt(first, body):
    return bytes([first]) + varint(len(body)) + body


def connect(client_id, username, password, clean=False, keep_alive=180):
    flags = (0x02 if clean else 0) | 0x80 | (0x40 if password is not None else 0)
    body = s16("MQTT") + bytes([4, flags]) + struct.pack(">H", keep_alive) + s16(client_id) + s16(username)
    if password is not None:
        body += s16(password)
    return pkt(0x10, body)


def subscribe(pid, filters):
    body = struct.pack(">H", pid) + b"".join(s16(f) + bytes([q]) for f, q in filters)
    return pkt(0x82, body)


def publish(topic, payload, qos=0, pid=0, dup=False, retain=False):
    first = 0x30 | (0x08 if dup else 0) | (qos << 1) | (0x01 if retain else 0)
    body = s16(topic) + (struct.pack(">H", pid) if qos else b"") + payload
    return pkt(first, body)


NODE_UA = "azure-iot-device%2F1.18.4%20(node%20v20.20.2%3B%20Debian%2012%3B%20x64)"
SAS_DEV = ("SharedAccessSignature sr=localhost%2Fdevices%2Fdev1&sig=Qy4NuR8Wm5y0sJvYp3l%2BGm6Qh0n"
           "%2FqXK7bQ2yW1%2F3xVc%3D&se=1767225600")
SAS_MOD = ("SharedAccessSignature sr=localhost%2Fdevices%2Fdev1%2Fmodules%2Fmod1&sig=4G2s%2BcZk1Hn8"
           "Vw0pQ9rLx7yTb3uE6dMf5aJ2oKi1Ns%3D&se=1767225600")
RID = "363201b0-bf58-46b7-b761-be503f2ec4c7"

seeds = {
    "connect_node_device": connect(
        "dev1",
        "localhost/dev1/?api-version=2021-04-12&model-id=dtmi:com:example:Thermostat;1&DeviceClientType=" + NODE_UA,
        SAS_DEV),
    "connect_node_module": connect(
        "dev1/mod1", "localhost/dev1/mod1/?api-version=2021-04-12&DeviceClientType=" + NODE_UA, SAS_MOD),
    "connect_x509_no_password": connect(
        "dev1", "localhost/dev1/?api-version=2021-04-12&DeviceClientType=" + NODE_UA, None),
    "connack": pkt(0x20, b"\x01\x00"),
    "subscribe_twin_res": subscribe(1, [("$iothub/twin/res/#", 0)]),
    "subscribe_c_sdk_several": subscribe(2, [("devices/dev1/messages/devicebound/#", 1),
                                             ("$iothub/methods/POST/#", 0),
                                             ("$iothub/twin/PATCH/properties/desired/#", 0)]),
    "suback": pkt(0x90, b"\x00\x02\x01\x00\x80"),
    "publish_qos0_twin_get": publish("$iothub/twin/GET/?$rid=" + RID, b" "),
    "publish_qos1_telemetry": publish(
        "devices/dev1/messages/events/%24.mid=mid-1&%24.ct=application%2Fjson&%24.ce=utf-8&alert=high%20temp",
        b'{"temperature":21.5}', qos=1, pid=3),
    "publish_qos1_desired_dup_retain": publish(
        "$iothub/twin/PATCH/properties/desired/?$version=3", b'{"temp":{"max":30},"$version":3}',
        qos=1, pid=0x1234, dup=True, retain=True),
    "puback": pkt(0x40, b"\x00\x03"),
    "qos2_flow": pkt(0x34, s16("t") + b"\x00\x07x") + pkt(0x50, b"\x00\x07") + pkt(0x62, b"\x00\x07")
                 + pkt(0x70, b"\x00\x07"),
    "unsubscribe_unsuback": pkt(0xA2, b"\x00\x05" + s16("$iothub/methods/POST/#")) + pkt(0xB0, b"\x00\x05"),
    "pingreq": pkt(0xC0, b""),
    "pingresp": pkt(0xD0, b""),
    "disconnect": pkt(0xE0, b""),
    "connect_with_will": pkt(0x10, s16("MQTT") + bytes([4, 0x2E]) + b"\x00\x3c" + s16("c") + s16("w/t")
                             + s16(b"gone")),
}
seeds["node_session"] = (seeds["connect_node_device"] + seeds["subscribe_twin_res"]
                         + seeds["publish_qos0_twin_get"] + seeds["publish_qos1_telemetry"]
                         + seeds["pingreq"] + seeds["disconnect"])

os.makedirs(HERE, exist_ok=True)
for name, data in seeds.items():
    with open(os.path.join(HERE, name + ".bin"), "wb") as f:
        f.write(data)
print(f"wrote {len(seeds)} seeds to {HERE}")
