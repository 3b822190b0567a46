// file_upload_service's storage pieces: the connection string and the SAS signatures, checked against
// signatures @azure/storage-blob 12.8 computes for the same inputs (generateBlobSASQueryParameters,
// generateAccountSASQueryParameters, sv 2019-12-12, https only).
#include "service/file_upload_service.hpp"

#include "common/encoding.hpp"

#include <gtest/gtest.h>

namespace twinhub::service {
namespace {

constexpr const char* azurite_key = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

storage_account azurite() {
    auto a = parse_storage_connection_string(std::string("DefaultEndpointsProtocol=https;AccountName=devstoreaccount1;AccountKey=") +
                                                 azurite_key + ";BlobEndpoint=https://127.0.0.1:10000/devstoreaccount1/;",
                                             "fileupload");
    EXPECT_TRUE(a) << (a ? "" : a.error().message);
    return *a;
}

time_point expiry() {
    return time_point(std::chrono::seconds(1893553445));  // 2030-01-02T03:04:05Z
}

std::string sig_of(const std::string& q) {
    auto p = q.find("&sig=");
    return *percent_decode(q.substr(p + 5));
}

TEST(file_upload_storage, connection_string_forms) {
    auto a = azurite();
    EXPECT_EQ(a.account_name, "devstoreaccount1");
    EXPECT_EQ(a.blob_endpoint, "https://127.0.0.1:10000/devstoreaccount1");
    EXPECT_EQ(a.host_name(), "127.0.0.1:10000/devstoreaccount1");
    EXPECT_EQ(a.account_key, *base64_decode(azurite_key));
    auto real = parse_storage_connection_string(std::string("DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=") +
                                                    azurite_key + ";EndpointSuffix=core.windows.net",
                                                "uploads");
    ASSERT_TRUE(real);
    EXPECT_EQ(real->host_name(), "acct.blob.core.windows.net");
}

TEST(file_upload_storage, bad_connection_strings_are_refused_with_the_reason) {
    EXPECT_FALSE(parse_storage_connection_string("AccountName=a", "fileupload"));
    EXPECT_FALSE(parse_storage_connection_string("AccountName=a;AccountKey=not*base64", "fileupload"));
    EXPECT_FALSE(parse_storage_connection_string(std::string("AccountName=a;AccountKey=") + azurite_key +
                                                     ";BlobEndpoint=http://127.0.0.1:10000/a",
                                                 "fileupload"));  // devices upload over https only
    EXPECT_FALSE(parse_storage_connection_string(std::string("AccountName=a;AccountKey=") + azurite_key, "Bad_Name"));
    EXPECT_FALSE(parse_storage_connection_string(std::string("AccountName=a;AccountKey=") + azurite_key, "ab"));
    EXPECT_FALSE(parse_storage_connection_string("garbage", "fileupload"));
}

TEST(file_upload_storage, blob_sas_matches_the_storage_sdk) {
    const auto q = blob_service_sas(azurite(), "dev1/dir/a b.txt", "rw", expiry());
    EXPECT_EQ(sig_of(q), "pi/oBqyXHO9mkD/D/Rj92borhCMTs5r2o9Ghy1kKXL0=");
    EXPECT_NE(q.find("sv=2019-12-12"), std::string::npos);
    EXPECT_NE(q.find("&sr=b"), std::string::npos);
    EXPECT_NE(q.find("&sp=rw"), std::string::npos);
    EXPECT_NE(q.find("&se=2030-01-02T03%3A04%3A05Z"), std::string::npos);
    // Another blob or permission: another signature.
    EXPECT_NE(sig_of(blob_service_sas(azurite(), "dev1/dir/a b.txt", "r", expiry())), sig_of(q));
}

TEST(file_upload_storage, account_sas_matches_the_storage_sdk) {
    EXPECT_EQ(sig_of(container_account_sas(azurite(), "c", expiry())), "KkmeJl7ActXNjwAWJ51FBgdSE2DF934EXqsNIjn+Qak=");
}

TEST(file_upload_storage, blob_paths_are_encoded_per_segment) {
    EXPECT_EQ(blob_path_encode("dev1/logs/run 1.bin"), "dev1/logs/run%201.bin");
}

TEST(file_upload_storage, notification_body_has_the_fields_services_read) {
    file_notification n;
    n.device_id = "d";
    n.blob_name = "d/x";
    n.blob_uri = "https://h/c/d/x";
    n.blob_size = 12;
    n.last_updated_time = "2030-01-02T03:04:05+00:00";
    n.enqueued_time = "2030-01-02T03:04:05.0000000Z";
    EXPECT_EQ(file_notification_json(n),
              "{\"deviceId\":\"d\",\"blobUri\":\"https://h/c/d/x\",\"blobName\":\"d/x\",\"lastUpdatedTime\":"
              "\"2030-01-02T03:04:05+00:00\",\"blobSizeInBytes\":12,\"enqueuedTimeUtc\":\"2030-01-02T03:04:05.0000000Z\"}");
}

}  // namespace
}  // namespace twinhub::service
