/* Decodes a JPEG held in memory with libjpeg (built by mozjpeg-sys), driving it so that it
 * accepts and refuses the same files as `PIL.Image.open(p).load()` and gives the same pixels
 * (tests/it/preprocess_pillow.rs checks it file for file against Pillow). The behaviour it keeps:
 * - input arrives in 64 KiB blocks: libjpeg is given one block at a time and, whenever it
 *   suspends for more data, the next block is appended; a suspension once the whole file has
 *   been given means the file is truncated, except after every row has been read out (then the
 *   trailer is not needed and the image is complete);
 * - a skip request longer than the data at hand is carried over to the next block;
 * - libjpeg's errors end the decoding; its warnings (corrupt data, premature marker, ...) do not;
 * - libjpeg's defaults otherwise (accurate integer IDCT, fancy upsampling, its guess of the
 *   colour space from the JFIF / Adobe markers); only the output colour space is chosen, from the
 *   image mode: grey, RGB or CMYK.
 */
#include <setjmp.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "jpeglib.h"

/* Returns a buffer of width * height * components bytes, or NULL to refuse the image. */
typedef unsigned char *(*odinw_alloc_fn)(void *ctx, unsigned width, unsigned height,
                                         int components);

enum { ODINW_OK = 0, ODINW_TRUNCATED = 1, ODINW_ERROR = 2, ODINW_REFUSED = 3 };

struct odinw_err {
  struct jpeg_error_mgr pub;
  jmp_buf jump;
};

struct odinw_src {
  struct jpeg_source_mgr pub;
  long skip; /* bytes still to skip once the next block arrives */
};

static void odinw_error_exit(j_common_ptr cinfo) {
  longjmp(((struct odinw_err *)cinfo->err)->jump, 1);
}

static void odinw_output_message(j_common_ptr cinfo) { (void)cinfo; }

static void odinw_stub(j_decompress_ptr cinfo) { (void)cinfo; }

static boolean odinw_fill_input_buffer(j_decompress_ptr cinfo) {
  (void)cinfo;
  return FALSE; /* suspension */
}

static void odinw_skip_input_data(j_decompress_ptr cinfo, long num_bytes) {
  struct odinw_src *src = (struct odinw_src *)cinfo->src;
  if (num_bytes > (long)src->pub.bytes_in_buffer) {
    src->skip = num_bytes - (long)src->pub.bytes_in_buffer;
    src->pub.next_input_byte += src->pub.bytes_in_buffer;
    src->pub.bytes_in_buffer = 0;
  } else {
    src->pub.bytes_in_buffer -= num_bytes;
    src->pub.next_input_byte += num_bytes;
    src->skip = 0;
  }
}

/* out_space: 1 grey, 3 RGB, 4 CMYK (Pillow's mode L, RGB, CMYK). On error, msg gets libjpeg's
 * message (msg_len >= JMSG_LENGTH_MAX). */
int odinw_jpeg_decode(const unsigned char *data, size_t len, size_t block, int out_space,
                      odinw_alloc_fn alloc, void *ctx, char *msg, size_t msg_len) {
  struct jpeg_decompress_struct cinfo;
  struct odinw_err err;
  struct odinw_src src;
  /* volatile: read after longjmp */
  volatile int stage = 1;
  unsigned char *volatile out = NULL;
  volatile JDIMENSION row_bytes = 0;
  size_t end;
  int ok;

  memset(&cinfo, 0, sizeof cinfo);
  cinfo.err = jpeg_std_error(&err.pub);
  err.pub.error_exit = odinw_error_exit;
  err.pub.output_message = odinw_output_message;
  if (setjmp(err.jump)) {
    char text[JMSG_LENGTH_MAX];
    (*cinfo.err->format_message)((j_common_ptr)&cinfo, text);
    if (msg_len > 0) {
      strncpy(msg, text, msg_len - 1);
      msg[msg_len - 1] = 0;
    }
    jpeg_destroy_decompress(&cinfo);
    return ODINW_ERROR;
  }
  jpeg_create_decompress(&cinfo);
  src.pub.init_source = odinw_stub;
  src.pub.fill_input_buffer = odinw_fill_input_buffer;
  src.pub.skip_input_data = odinw_skip_input_data;
  src.pub.resync_to_restart = jpeg_resync_to_restart;
  src.pub.term_source = odinw_stub;
  src.pub.next_input_byte = data;
  end = len < block ? len : block;
  src.pub.bytes_in_buffer = end;
  src.skip = 0;
  cinfo.src = &src.pub;

  for (;;) {
    int suspended = 0;
    if (src.skip > 0) {
      odinw_skip_input_data(&cinfo, src.skip);
      if (src.skip > 0) suspended = 1;
    }
    while (!suspended) {
      if (stage == 1) {
        do {
          ok = jpeg_read_header(&cinfo, FALSE);
        } while (ok == JPEG_HEADER_TABLES_ONLY);
        if (ok == JPEG_SUSPENDED) {
          suspended = 1;
          break;
        }
        cinfo.out_color_space =
            out_space == 1 ? JCS_GRAYSCALE : out_space == 3 ? JCS_RGB : JCS_CMYK;
        stage = 2;
      } else if (stage == 2) {
        if (!jpeg_start_decompress(&cinfo)) {
          suspended = 1;
          break;
        }
        out = alloc(ctx, cinfo.output_width, cinfo.output_height, cinfo.output_components);
        if (out == NULL) {
          jpeg_destroy_decompress(&cinfo);
          return ODINW_REFUSED;
        }
        row_bytes = cinfo.output_width * (JDIMENSION)cinfo.output_components;
        stage = 3;
      } else if (stage == 3) {
        while (cinfo.output_scanline < cinfo.output_height) {
          JSAMPROW rows[16];
          JDIMENSION i, n = cinfo.output_height - cinfo.output_scanline;
          if (n > 16) n = 16;
          for (i = 0; i < n; i++)
            rows[i] = out + (size_t)(cinfo.output_scanline + i) * row_bytes;
          if (jpeg_read_scanlines(&cinfo, rows, n) == 0) {
            suspended = 1;
            break;
          }
        }
        if (suspended) break;
        stage = 4;
      } else {
        /* Pillow: a suspension here, with every row out, ends the decoding too. */
        jpeg_finish_decompress(&cinfo);
        jpeg_destroy_decompress(&cinfo);
        return ODINW_OK;
      }
    }
    if (end >= len) {
      jpeg_destroy_decompress(&cinfo);
      return ODINW_TRUNCATED;
    }
    {
      size_t add = len - end < block ? len - end : block;
      if (src.pub.bytes_in_buffer == 0) src.pub.next_input_byte = data + end;
      src.pub.bytes_in_buffer += add;
      end += add;
    }
  }
}
