// The SDK warns once per process that it will soon need Node 22; in the test output that is noise. The service
// itself keeps the warning: it is meant for whoever runs it.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
