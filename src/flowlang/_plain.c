/* flowlang._plain: the input check's walk in C (an optional speed-up; flowlang.runtime.values
 * holds the same walk in Python (is_plain_in_python) and uses it when this module is not built).
 *
 * is_plain(value, plain_types, decimal_type, big_bits) is True when value, a dict or a list, holds only
 * values flowlang uses as they are: under keys that are exactly str, values of exactly str, int (of fewer
 * than big_bits bits), dict, list, a finite decimal_type, or a type in the frozenset plain_types. False
 * means "convert it in Python" (from_python), never "refused": the caller says what is wrong.
 *
 * No Python code runs during the walk (exact types only; Decimal's is_finite and int's bit_length are
 * C methods; a value whose class's metaclass has its own __hash__ or __eq__, which the frozenset lookup
 * would run, is sent to Python instead), so the borrowed references on the stack stay valid and nothing
 * can change under it. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#define BUDGET 50000000 /* containers pushed: a cyclic structure ends here (and from_python refuses it), and
                            * the stack stays below it however wide the cycle ([a] * 100 pushes 100 a pop) */

typedef struct {
    PyObject **items;
    Py_ssize_t size;
    Py_ssize_t capacity;
    long budget;
} Stack;

/* 1: pushed; 0: the budget is spent (convert it in Python); -1: an error is set. */
static int push(Stack *stack, PyObject *item) {
    if (--stack->budget < 0) {
        return 0;
    }
    if (stack->size == stack->capacity) {
        Py_ssize_t capacity = stack->capacity * 2;
        PyObject **items = PyMem_Realloc(stack->items, (size_t)capacity * sizeof(PyObject *));
        if (items == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        stack->items = items;
        stack->capacity = capacity;
    }
    stack->items[stack->size++] = item;
    return 1;
}

/* 1: used as it is; 0: not (convert it in Python); -1: an error is set. Containers are pushed. */
static int check_value(PyObject *x, Stack *stack, PyObject *plain, PyTypeObject *decimal, PyObject *is_finite,
                       long big_bits) {
    PyTypeObject *type = Py_TYPE(x);
    if (type == &PyUnicode_Type || x == Py_None || type == &PyBool_Type) {
        return 1;
    }
    if (type == &PyLong_Type) {
        int overflow = 0;
        PyLong_AsLongLongAndOverflow(x, &overflow);
        if (!overflow) {
            return 1;
        }
        PyObject *bits = PyObject_CallMethod(x, "bit_length", NULL);
        if (bits == NULL) {
            return -1;
        }
        long n = PyLong_AsLong(bits);
        Py_DECREF(bits);
        if (n == -1 && PyErr_Occurred()) {
            return -1;
        }
        return n < big_bits;
    }
    if (type == &PyDict_Type || type == &PyList_Type) {
        return push(stack, x);
    }
    if (type == decimal) {
        PyObject *finite = PyObject_Vectorcall(is_finite, &x, 1, NULL);
        if (finite == NULL) {
            return -1;
        }
        int answer = PyObject_IsTrue(finite);
        Py_DECREF(finite);
        return answer;
    }
    PyTypeObject *meta = Py_TYPE(type);
    if (meta->tp_hash != PyType_Type.tp_hash || meta->tp_richcompare != PyType_Type.tp_richcompare) {
        return 0; /* the lookup would run the metaclass's Python code, which could change what is walked */
    }
    return PySet_Contains(plain, (PyObject *)type);
}

static PyObject *is_plain(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "is_plain(value, plain_types, decimal_type, big_bits)");
        return NULL;
    }
    PyObject *value = args[0];
    PyObject *plain = args[1];
    if (!PyFrozenSet_CheckExact(plain) || !PyType_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError, "is_plain: plain_types is a frozenset, decimal_type a type");
        return NULL;
    }
    PyTypeObject *decimal = (PyTypeObject *)args[2];
    long big_bits = PyLong_AsLong(args[3]);
    if (big_bits == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (Py_TYPE(value) != &PyDict_Type && Py_TYPE(value) != &PyList_Type) {
        Py_RETURN_FALSE;
    }
    PyObject *is_finite = PyObject_GetAttrString(args[2], "is_finite"); /* the unbound C method */
    if (is_finite == NULL) {
        return NULL;
    }
    Stack stack = {PyMem_Malloc(64 * sizeof(PyObject *)), 0, 64, BUDGET};
    if (stack.items == NULL) {
        Py_DECREF(is_finite);
        return PyErr_NoMemory();
    }
    stack.items[stack.size++] = value;
    int answer = 1;
    while (stack.size > 0 && answer == 1) {
        PyObject *container = stack.items[--stack.size];
        if (Py_TYPE(container) == &PyDict_Type) {
            Py_ssize_t pos = 0;
            PyObject *key, *item;
            while (PyDict_Next(container, &pos, &key, &item)) {
                if (Py_TYPE(key) != &PyUnicode_Type) { /* from_python makes it text */
                    answer = 0;
                    break;
                }
                answer = check_value(item, &stack, plain, decimal, is_finite, big_bits);
                if (answer != 1) {
                    break;
                }
            }
        } else {
            Py_ssize_t size = PyList_GET_SIZE(container);
            for (Py_ssize_t i = 0; i < size; i++) {
                answer = check_value(PyList_GET_ITEM(container, i), &stack, plain, decimal, is_finite,
                                     big_bits);
                if (answer != 1) {
                    break;
                }
            }
        }
    }
    PyMem_Free(stack.items);
    Py_DECREF(is_finite);
    if (answer < 0) {
        return NULL;
    }
    return PyBool_FromLong(answer);
}

static PyMethodDef methods[] = {
    {"is_plain", (PyCFunction)(void (*)(void))is_plain, METH_FASTCALL,
     "is_plain(value, plain_types, decimal_type, big_bits): True when value holds only values flowlang uses "
     "as they are (see flowlang.runtime.values.is_plain_in_python)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    .m_base = PyModuleDef_HEAD_INIT,
    .m_name = "flowlang._plain",
    .m_doc = "The input check's walk in C (optional; flowlang.runtime.values.is_plain_in_python is the same walk "
             "in Python).",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC PyInit__plain(void) { return PyModule_Create(&module); }
