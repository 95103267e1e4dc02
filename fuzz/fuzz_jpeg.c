/*
 * fuzz_jpeg.c: libFuzzer target for the loader's JPEG path (loader/decode.h):
 * the checks before decoding, TurboJPEG's header and decode (gray, CMYK,
 * progressive, scaled), fastai's crop geometry and the Pillow resize, then the
 * whole-image decode `loader verify` uses.
 *
 * Input: u8 output side (1 + b % 96), u8 flags (bit 0 random crop, bit 1
 * exact, bit 2 strict), u16 sample index, u8 pixel limit ((1 + b) x 16384,
 * at most 4.2 MP: the product default is Pillow's 179 MP, which would only
 * make the fuzzer slow), then the file.
 */
#include "check.h"
#include "decode.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static loader_decoder_t *dec;
    static uint8_t out[96 * 96 * 3];
    if (!dec) dec = loader_decoder_new();
    NF_CHECK(dec, "decoder");
    if (size < 5) return 0;
    loader_presize_params_t p = {
        .size = 1u + data[0] % 96u,
        .random_crop = data[1] & 1,
        .exact = data[1] & 2,
        .strict = data[1] & 4,
        .seed = 42,
        .index = (uint32_t)data[2] | (uint32_t)data[3] << 8,
        .max_pixels = (1u + data[4]) * 16384u,
    };
    const uint8_t *jpeg = data + 5;
    size_t len = size - 5;
    loader_decode_info_t info;
    int rc = loader_decoder_presize(dec, &p, jpeg, len, out, &info);
    NF_CHECK(rc == 0 ? info.bad == LOADER_BAD_NONE : info.bad >= 0 && info.bad < LOADER_BAD_N,
             "presize result and reason agree");
    const uint8_t *px = loader_decoder_full(dec, jpeg, len, p.strict, p.max_pixels, &info);
    if (px) {
        NF_CHECK(info.width && info.height && (uint64_t)info.width * info.height <= p.max_pixels,
                 "a decoded image has a size within the pixel limit");
        volatile uint8_t last = px[(size_t)info.width * info.height * 3 - 1];
        (void)last;
    }
    return 0;
}
