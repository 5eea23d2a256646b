/* Debian's libgit2 is built with GSSAPI (Kerberos "Negotiate" authentication for HTTP
   remotes) and Debian ships no static libgssapi_krb5: linking libgit2 statically (adr/0081)
   would otherwise load six Kerberos libraries at every start for a transport Ratchet never
   uses (services are cloned from local paths; nothing fetches or pushes). These are the
   GSSAPI entry points libgit2's auth_negotiate.c calls, with RFC 2744's C signatures (the
   opaque handle types as pointers). Every request fails with GSS_S_FAILURE, as a Kerberos
   library with no mechanism would; releases succeed. An HTTP remote asking for Negotiate
   authentication is refused ("unknown negotiate error"), never answered. */
#include <stddef.h>

typedef unsigned int OM_uint32;
typedef void *gss_handle; /* gss_name_t, gss_ctx_id_t, gss_cred_id_t, gss_OID, gss_OID_set,
                             gss_buffer_t, gss_channel_bindings_t */

#define RATCHET_GSS_S_COMPLETE 0u
/* GSS_S_FAILURE: a routine error "unspecified at the GSS level" (RFC 2744, 3.9.1). */
#define RATCHET_GSS_S_FAILURE (13u << 16)

static OM_uint32 answer(OM_uint32 *minor_status, OM_uint32 major) {
    if (minor_status != NULL) *minor_status = 0;
    return major;
}

/* The name type libgit2 passes to gss_import_name, never dereferenced here. */
gss_handle GSS_C_NT_HOSTBASED_SERVICE = NULL;

OM_uint32 gss_indicate_mechs(OM_uint32 *minor_status, gss_handle *mech_set) {
    if (mech_set != NULL) *mech_set = NULL;
    return answer(minor_status, RATCHET_GSS_S_FAILURE);
}

OM_uint32 gss_import_name(OM_uint32 *minor_status, gss_handle input_name_buffer, gss_handle input_name_type,
                          gss_handle *output_name) {
    (void)input_name_buffer; (void)input_name_type;
    if (output_name != NULL) *output_name = NULL;
    return answer(minor_status, RATCHET_GSS_S_FAILURE);
}

OM_uint32 gss_init_sec_context(OM_uint32 *minor_status, gss_handle cred, gss_handle *context, gss_handle target,
                               gss_handle mech_type, OM_uint32 req_flags, OM_uint32 time_req, gss_handle bindings,
                               gss_handle input_token, gss_handle *actual_mech_type, gss_handle output_token,
                               OM_uint32 *ret_flags, OM_uint32 *time_rec) {
    (void)cred; (void)context; (void)target; (void)mech_type; (void)req_flags; (void)time_req;
    (void)bindings; (void)input_token; (void)actual_mech_type; (void)output_token;
    if (ret_flags != NULL) *ret_flags = 0;
    if (time_rec != NULL) *time_rec = 0;
    return answer(minor_status, RATCHET_GSS_S_FAILURE);
}

OM_uint32 gss_display_status(OM_uint32 *minor_status, OM_uint32 status_value, int status_type, gss_handle mech_type,
                             OM_uint32 *message_context, gss_handle status_string) {
    (void)status_value; (void)status_type; (void)mech_type; (void)status_string;
    if (message_context != NULL) *message_context = 0;
    return answer(minor_status, RATCHET_GSS_S_FAILURE);
}

OM_uint32 gss_delete_sec_context(OM_uint32 *minor_status, gss_handle *context, gss_handle output_token) {
    (void)output_token;
    if (context != NULL) *context = NULL;
    return answer(minor_status, RATCHET_GSS_S_COMPLETE);
}

OM_uint32 gss_release_buffer(OM_uint32 *minor_status, gss_handle buffer) {
    (void)buffer;
    return answer(minor_status, RATCHET_GSS_S_COMPLETE);
}

OM_uint32 gss_release_name(OM_uint32 *minor_status, gss_handle *name) {
    if (name != NULL) *name = NULL;
    return answer(minor_status, RATCHET_GSS_S_COMPLETE);
}

OM_uint32 gss_release_oid_set(OM_uint32 *minor_status, gss_handle *set) {
    if (set != NULL) *set = NULL;
    return answer(minor_status, RATCHET_GSS_S_COMPLETE);
}
