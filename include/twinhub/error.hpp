// Errors of the twinhub C++ SDK: every call that can fail returns twinhub::result<T>, which holds
// either a value or a twinhub::error {errc code, message}. The message is the hub's own text when
// the hub refused the operation (parsed from the REST body {"Message":"ErrorCode:X;text"} or the
// MQTT twin error {"errorCode":...,"message":...}), or a description of what failed locally.
// errc::connection_failed means the hub could not be reached (DNS, TCP, TLS, lost connection).
// Thread safety: plain values.
#pragma once

// The SDK shares its error enum with the hub; the installed tree has it at twinhub/common/errc.hpp,
// which this quoted include finds next to this header.
#include "common/errc.hpp"
