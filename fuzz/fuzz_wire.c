/*
 * fuzz_wire.c: libFuzzer target for the stage-independent validation of
 * every message (common/wire.h nf_wire_decode): envelope size, protobuf
 * decode of the Envelope and every body, version, job, body type, payload
 * presence and, for RawBatch / TensorBatch, shape x dtype against the payload
 * size with overflow-safe arithmetic.
 *
 * Input: u8 mode, u8 body selector, u16 envelope length, the envelope, then
 *   mode bit 0  socket checks the job ("netteflow")   bit 1  allow an empty job
 *   mode bit 2  payloads accepted (up to 2 GiB)       bit 3  a payload frame came
 *   mode bit 4  every body accepted, else only body (10 + selector % 17)
 *   mode bit 5  the payload size is the next u32 (a frame that large is only
 *               described: nothing reads it), else the rest of the input
 * An accepted envelope is packed again and unpacked again (what a relay
 * would do); when it unpacks, it has the same body.
 */
#include "check.h"
#include "wire.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4) return 0;
    uint8_t mode = data[0], sel = data[1];
    size_t env_len = (size_t)data[2] | (size_t)data[3] << 8;
    const uint8_t *env_buf = data + 4, *end = data + size;
    if (env_len > (size_t)(end - env_buf)) env_len = (size_t)(end - env_buf);
    const uint8_t *rest = env_buf + env_len;
    size_t payload_len = (size_t)(end - rest);
    if ((mode & 32) && payload_len >= 4)
        payload_len = (size_t)rest[0] | (size_t)rest[1] << 8 | (size_t)rest[2] << 16 |
                      (size_t)rest[3] << 24;
    nf_wire_expect_t ex = {
        .job = mode & 1 ? "netteflow" : NULL,
        .allow_no_job = mode & 2,
        .bodies = mode & 16 ? ~(uint64_t)0 : NF_WIRE_BODY(10 + sel % 17),
        .max_payload = mode & 4 ? (uint64_t)1 << 31 : 0,
    };
    bool has_payload = mode & 8;
    if (!has_payload) payload_len = 0;
    nf_wire_drop_t why = NF_WIRE_DROP_N;
    const char *detail = NULL;
    Nf__Envelope *env = nf_wire_decode(&ex, env_buf, env_len, has_payload, payload_len, &why, &detail);
    if (!env) {
        NF_CHECK(why < NF_WIRE_DROP_N && detail && *detail, "a drop has a reason");
        return 0;
    }
    NF_CHECK(env->version == NF_PROTOCOL_VERSION, "accepted a wrong version");
    NF_CHECK(env->body_case != NF__ENVELOPE__BODY__NOT_SET, "accepted no body");
    size_t len = nf__envelope__get_packed_size(env);
    uint8_t *buf = malloc(len + 1);
    NF_CHECK(buf, "malloc");
    NF_CHECK(nf__envelope__pack(env, buf) == len, "repack");
    // protobuf-c keeps unknown fields and writes them back, even a field
    // number 0 it should have refused (fuzz/regress/wire/): then its own
    // output does not unpack. No stage re-sends a received envelope, so only
    // what does unpack again must come back with the same body.
    Nf__Envelope *again = nf__envelope__unpack(NULL, len, buf);
    NF_CHECK(!again || again->body_case == env->body_case, "a repacked envelope changed its body");
    if (again) nf__envelope__free_unpacked(again, NULL);
    free(buf);
    nf__envelope__free_unpacked(env, NULL);
    return 0;
}
