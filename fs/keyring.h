/* keyring.h - the account password from the desktop keyring (the Secret
 * Service: GNOME Keyring, KWallet) through libsecret, for
 * -o password_keyring.
 *
 * The item is found by the attributes service=imapfs, user=USER and
 * host=HOST, in any schema, so that
 *   secret-tool store --label='imapfs USER@HOST' service imapfs \
 *       user USER host HOST
 * stores what imapfs looks up. Optional at build time (meson -Dkeyring).
 */
#ifndef IMAPFS_FS_KEYRING_H
#define IMAPFS_FS_KEYRING_H

#include <glib.h>

/* TRUE if this build can ask a keyring at all. */
gboolean fs_keyring_available(void);

/* Looks the password of @user at @host up (synchronously, over the session
 * bus; runs at startup from the main thread). Returns it (g_malloc'd; wipe
 * it with fs_password_free()) or NULL with an IMAP_ERROR_AUTH error that
 * says why: no such item (with the secret-tool command that stores one),
 * no keyring reachable (the D-Bus error), or a build without libsecret.
 * The message never contains the password. */
char *fs_keyring_lookup(const char *user, const char *host, GError **error);

#endif
