//! The text log format of `iamra` and of its TPM helper `iamra-tpm` (which includes
//! this file), so that a warning reads the same whichever process logs it.

/// `iamra: warning: message key=value`: one short line per event, no timestamps,
/// since the AWS SDKs paste our stderr into their own errors.
pub(crate) struct ShortFormat;

impl<S, N> tracing_subscriber::fmt::FormatEvent<S, N> for ShortFormat
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let level = match *event.metadata().level() {
            tracing::Level::ERROR => "error",
            tracing::Level::WARN => "warning",
            tracing::Level::INFO => "info",
            tracing::Level::DEBUG => "debug",
            tracing::Level::TRACE => "trace",
        };
        write!(writer, "iamra: {level}: ")?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}
