#pragma once
// OpenSSL's functions as the daemon uses them, from libssl (and the libcrypto it brings) opened
// the first time a configuration needs them: a TLS listener, a WebSocket listener (SHA-1 of the
// handshake), a password file (PBKDF2 / SHA-512), an external broker. A daemon that needs none
// maps neither library (about 1.7 MiB of an idle daemon; docs/BROKER.md, "The idle daemon").
//
// Call sites name the functions as OpenSSL does: `ssl->SSL_CTX_new(...)`. What OpenSSL defines
// as a macro over another function is written out (SSL_CTX_set_min_proto_version is
// SSL_CTX_ctrl, OPENSSL_free is CRYPTO_free).
//
// Thread safety: load() may be called from any thread; the table never changes once loaded.

#include <string>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "common/expected.hpp"

namespace ebus::openssl {

// NOLINTBEGIN(cppcoreguidelines-macro-usage): one list makes both the table and its loading.
#define EBUS_OPENSSL_FUNCTIONS(X)       \
  X(ASN1_STRING_to_UTF8)                \
  X(BIO_clear_flags)                    \
  X(BIO_free)                           \
  X(BIO_get_data)                       \
  X(BIO_get_new_index)                  \
  X(BIO_meth_free)                      \
  X(BIO_meth_new)                       \
  X(BIO_meth_set_ctrl)                  \
  X(BIO_meth_set_read_ex)               \
  X(BIO_meth_set_write_ex)              \
  X(BIO_new)                            \
  X(BIO_set_data)                       \
  X(BIO_set_flags)                      \
  X(BIO_set_init)                       \
  X(CRYPTO_free)                        \
  X(CRYPTO_memcmp)                      \
  X(ERR_clear_error)                    \
  X(ERR_error_string_n)                 \
  X(ERR_get_error)                      \
  X(ERR_peek_error)                     \
  X(EVP_DecodeBlock)                    \
  X(EVP_Digest)                         \
  X(EVP_DigestFinal_ex)                 \
  X(EVP_DigestInit_ex)                  \
  X(EVP_DigestUpdate)                   \
  X(EVP_EncodeBlock)                    \
  X(EVP_MD_CTX_free)                    \
  X(EVP_MD_CTX_new)                     \
  X(EVP_sha1)                           \
  X(EVP_sha512)                         \
  X(PKCS5_PBKDF2_HMAC)                  \
  X(SSL_CTX_check_private_key)          \
  X(SSL_CTX_ctrl)                       \
  X(SSL_CTX_free)                       \
  X(SSL_CTX_get0_param)                 \
  X(SSL_CTX_get_ex_data)                \
  X(SSL_CTX_load_verify_locations)      \
  X(SSL_CTX_new)                        \
  X(SSL_CTX_set_client_CA_list)         \
  X(SSL_CTX_set_default_passwd_cb)      \
  X(SSL_CTX_set_ex_data)                \
  X(SSL_CTX_set_info_callback)          \
  X(SSL_CTX_set_options)                \
  X(SSL_CTX_set_session_id_context)     \
  X(SSL_CTX_set_verify)                 \
  X(SSL_CTX_use_PrivateKey_file)        \
  X(SSL_CTX_use_certificate_chain_file) \
  X(SSL_ctrl)                           \
  X(SSL_do_handshake)                   \
  X(SSL_free)                           \
  X(SSL_get1_peer_certificate)          \
  X(SSL_get_SSL_CTX)                    \
  X(SSL_get_error)                      \
  X(SSL_get_verify_result)              \
  X(SSL_load_client_CA_file)            \
  X(SSL_new)                            \
  X(SSL_read)                           \
  X(SSL_set_accept_state)               \
  X(SSL_set_bio)                        \
  X(SSL_write)                          \
  X(TLS_client_method)                  \
  X(TLS_server_method)                  \
  X(X509_NAME_ENTRY_get_data)           \
  X(X509_NAME_get_entry)                \
  X(X509_NAME_get_index_by_NID)         \
  X(X509_VERIFY_PARAM_set1_host)        \
  X(X509_VERIFY_PARAM_set1_ip_asc)      \
  X(X509_VERIFY_PARAM_set_hostflags)    \
  X(X509_free)                          \
  X(X509_get_subject_name)

// NOLINTBEGIN(readability-identifier-naming): the members carry OpenSSL's names.
struct functions {
#define EBUS_OPENSSL_MEMBER(name) \
  decltype(&::name) name = nullptr;  // NOLINT(bugprone-macro-parentheses)
  EBUS_OPENSSL_FUNCTIONS(EBUS_OPENSSL_MEMBER)
#undef EBUS_OPENSSL_MEMBER
};
// NOLINTEND(readability-identifier-naming)
// NOLINTEND(cppcoreguidelines-macro-usage)

/// Opens libssl and resolves the table, once; later calls return the same table or the same
/// error ("cannot load libssl.so.3: <reason>"), which callers put in their own terms.
[[nodiscard]] expected<const functions*, std::string> load();

/// The oldest error on this thread's OpenSSL error queue as text, the queue then cleared;
/// "unknown OpenSSL error" when it is empty.
[[nodiscard]] std::string last_error(const functions& ssl);

/// A pass-phrase callback that refuses: an encrypted key must fail to load, not make OpenSSL
/// prompt on the terminal and block the loop.
int refuse_passphrase(char* buf, int size, int rwflag, void* userdata);

/// Why use_key_pair() failed, and OpenSSL's words for it (last_error()).
struct key_pair_failure {
  enum class kind {
    certificate,  ///< the certificate file is not a PEM certificate chain
    key,          ///< the key file is not an unencrypted PEM private key
    mismatch,     ///< the key is not the certificate's
  };
  kind what;
  std::string detail;
};

/// Loads `cert_file` (a PEM chain) and `key_file` (an unencrypted PEM key: a pass phrase is
/// refused) into `ctx`, and checks that the key is the certificate's. The configuration check,
/// the TLS listeners and the external-broker client load their pairs the same way.
[[nodiscard]] expected<void, key_pair_failure> use_key_pair(const functions& ssl, SSL_CTX* ctx,
                                                            const std::string& cert_file,
                                                            const std::string& key_file);

/// "certificate 'C': ...", "key 'K': ..." or "key 'K' does not match certificate 'C': ...".
[[nodiscard]] std::string describe(const key_pair_failure& failure, const std::string& cert_file,
                                   const std::string& key_file);

}  // namespace ebus::openssl
