#include "http/rest_api.hpp"

#include "http/error_body.hpp"
#include "http/route.hpp"

namespace twinhub::http {

void rest_api::handle_digital_twin(const route&, const rest_request&, completion done) const {
    done(error_response(error{errc::not_found, "Digital twins are not served yet."}));
}

}  // namespace twinhub::http
