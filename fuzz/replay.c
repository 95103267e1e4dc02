/*
 * replay.c: main() for the fuzz targets in the normal build: runs
 * LLVMFuzzerTestOneInput once on every file named on the command line, or in
 * a folder named there (a seed corpus, fuzz/regress/<target>: inputs that
 * once crashed). A missing folder is skipped. Prints how many ran; a crash or
 * a failed check aborts, which fails the ctest, and so does finding no input.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int s_run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len == cap) {
            cap = cap ? cap * 2 : 4096;
            uint8_t *p = realloc(buf, cap);
            if (!p) {
                fprintf(stderr, "out of memory reading %s\n", path);
                exit(1);
            }
            buf = p;
        }
        size_t n = fread(buf + len, 1, cap - len, f);
        len += n;
        if (n == 0) break;
    }
    fclose(f);
    LLVMFuzzerTestOneInput(buf, len);
    free(buf);
    return 1;
}

int main(int argc, char **argv)
{
    int runs = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) continue;
        if (!S_ISDIR(st.st_mode)) {
            runs += s_run_file(argv[i]);
            continue;
        }
        DIR *d = opendir(argv[i]);
        for (struct dirent *e; d && (e = readdir(d)) != NULL;) {
            if (e->d_name[0] == '.' || !strcmp(e->d_name, "README.md")) continue;
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", argv[i], e->d_name);
            runs += s_run_file(path);
        }
        if (d) closedir(d);
    }
    printf("%s: %d inputs replayed\n", argv[0], runs);
    if (runs == 0) fprintf(stderr, "%s: no inputs (was the seed corpus generated?)\n", argv[0]);
    return runs > 0 ? 0 : 1;
}
