// The completion type of the services' asynchronous writes.
#pragma once

#include "common/errc.hpp"

#include <functional>

namespace twinhub::service {

template <class T>
using handler = std::function<void(result<T>)>;

}  // namespace twinhub::service
