/* replay_main.c - runs LLVMFuzzerTestOneInput over a corpus directory.
 *
 * Lets normal builds (no libFuzzer) replay the seed corpus as a test:
 *   parser_replay DIR...
 * Every regular file in each DIR is passed to the fuzz target.  A crash or
 * abort in the target fails the test by killing the process; a file that
 * cannot be read counts as failed.  Prints "N passed, M failed" and exits 0
 * only if nothing failed; a missing directory is an error (exit 1).
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>

#include <glib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static gint compare_names(gconstpointer a, gconstpointer b)
{
	return g_strcmp0(*(char *const *)a, *(char *const *)b);
}

/* Replays one directory in name order (stable output); returns FALSE if it
 * cannot be opened. */
static gboolean replay_dir(const char *path, unsigned int *passed,
			   unsigned int *failed)
{
	GError *error = NULL;
	GDir *dir = g_dir_open(path, 0, &error);
	GPtrArray *names;
	const char *name;
	guint i;

	if (dir == NULL) {
		fprintf(stderr, "%s\n", error->message);
		g_error_free(error);
		return FALSE;
	}
	names = g_ptr_array_new_with_free_func(g_free);
	while ((name = g_dir_read_name(dir)) != NULL)
		g_ptr_array_add(names, g_build_filename(path, name, NULL));
	g_dir_close(dir);
	g_ptr_array_sort(names, compare_names);

	for (i = 0; i < names->len; i++) {
		const char *file = g_ptr_array_index(names, i);
		char *contents;
		gsize len;

		if (!g_file_test(file, G_FILE_TEST_IS_REGULAR))
			continue;
		if (!g_file_get_contents(file, &contents, &len, &error)) {
			fprintf(stderr, "%s\n", error->message);
			g_clear_error(&error);
			(*failed)++;
			continue;
		}
		LLVMFuzzerTestOneInput((const uint8_t *)contents, len);
		g_free(contents);
		(*passed)++;
	}
	g_ptr_array_free(names, TRUE);
	return TRUE;
}

int main(int argc, char **argv)
{
	unsigned int passed = 0, failed = 0;
	int i;

	if (argc < 2) {
		fprintf(stderr, "usage: %s CORPUS-DIR...\n", argv[0]);
		return 1;
	}
	for (i = 1; i < argc; i++) {
		if (!replay_dir(argv[i], &passed, &failed))
			return 1;
	}
	printf("%u passed, %u failed\n", passed, failed);
	return failed == 0 ? 0 : 1;
}
