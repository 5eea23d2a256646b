import RatchetCore

extension Workspace {
    /// Posts pending notifications to the `notify` webhooks; a failure is a warning (and a
    /// `notify.failed` event), never the command's error.
    func notifyPeople() {
        do { try deliverNotifications() } catch { Terminal.warning("notifications: \(describe(error))") }
    }
}
